/**
 * Fuzz: a hostile NBD server. A well-formed server byte stream (handshake,
 * then replies to a read, a block status, a failing read and a flush) is
 * mutated and fed to the client's handshake and reply state machine through
 * a buffer-backed wire. Every case must end, within a time bound, in
 * success or typed errors (VdiskError) for every command; lengths are
 * bounded before anything is allocated. `VDISK_FUZZ_ITERATIONS` raises the
 * case count (default 400).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { IoError, VdiskError } from '../../src/core/errors.js';
import * as C from '../../src/io/nbd/constants.js';
import { NbdConnection } from '../../src/io/nbd/connection.js';
import { negotiate } from '../../src/io/nbd/handshake.js';
import type { Wire } from '../../src/io/nbd/wire.js';
import { fuzzCases, iterations, mutate, rng } from '../helpers/fuzz.js';

/** Server bytes, released segment by segment as the client sends the messages each answers. */
class ScriptWire implements Wire {
  readonly #bytes: Uint8Array;
  readonly #gates: readonly { end: number; writes: number }[];
  #pos = 0;
  #writes = 0;
  #dead: VdiskError | undefined;
  #waiting: (() => void) | undefined;
  #busy = false;

  constructor(bytes: Uint8Array, gates: readonly { end: number; writes: number }[]) {
    this.#bytes = bytes;
    this.#gates = gates;
  }

  #available(): number {
    let end = 0;
    for (const g of this.#gates) if (this.#writes >= g.writes) end = g.end;
    return end;
  }

  async readInto(into: Uint8Array): Promise<void> {
    for (;;) {
      if (this.#dead) throw this.#dead;
      if (this.#pos + into.length <= this.#available()) break;
      // Everything released and still short: the server closed the connection.
      if (this.#available() === this.#bytes.length) throw new IoError('Connection closed by the server');
      // Like SocketWire's idle timeout: a client owed an answer that no message of its own can release gives up.
      const timer = this.#busy ? setTimeout(() => this.destroy(new IoError('Connection timed out')), 20) : undefined;
      await new Promise<void>((r) => (this.#waiting = r));
      clearTimeout(timer);
    }
    into.set(this.#bytes.subarray(this.#pos, this.#pos + into.length));
    this.#pos += into.length;
  }

  async write(): Promise<void> {
    this.#writes++;
    this.#wake();
  }

  setBusy(busy: boolean): void {
    this.#busy = busy;
  }

  destroy(reason?: VdiskError): void {
    this.#dead ??= reason ?? new IoError('closed');
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }
}

/** Big-endian byte building. */
class Bytes {
  readonly parts: number[] = [];
  u16(n: number): this {
    this.parts.push((n >>> 8) & 0xff, n & 0xff);
    return this;
  }
  u32(n: number): this {
    return this.u16(Math.floor(n / 0x10000) & 0xffff).u16(n & 0xffff);
  }
  u64(n: bigint | number): this {
    const b = BigInt(n);
    return this.u32(Number(b >> 32n)).u32(Number(b & 0xffffffffn));
  }
  str(s: string): this {
    for (const c of new TextEncoder().encode(s)) this.parts.push(c);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.parts.push(0);
    return this;
  }
}

function optReply(b: Bytes, option: number, type: number, payload: (p: Bytes) => void = () => undefined): void {
  const p = new Bytes();
  payload(p);
  b.u64(C.REP_MAGIC).u32(option).u32(type).u32(p.parts.length);
  b.parts.push(...p.parts);
}

function chunk(b: Bytes, flags: number, type: number, handle: number, payload: (p: Bytes) => void = () => undefined): void {
  const p = new Bytes();
  payload(p);
  b.u32(C.STRUCTURED_REPLY_MAGIC).u16(flags).u16(type).u64(handle).u32(p.parts.length);
  b.parts.push(...p.parts);
}

const SIZE = 1024 * 1024;

/** A well-behaved server's bytes and when each part may be read (client messages sent so far). */
function script(): { bytes: Uint8Array; gates: { end: number; writes: number }[] } {
  const b = new Bytes();
  const gates: { end: number; writes: number }[] = [];
  const gate = (writes: number): void => void gates.push({ end: b.parts.length, writes });
  b.u64(C.NBD_MAGIC).u64(C.OPTS_MAGIC).u16(C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES);
  gate(0);
  optReply(b, C.OPT_STRUCTURED_REPLY, C.REP_ACK);
  gate(2);
  optReply(b, C.OPT_SET_META_CONTEXT, C.REP_META_CONTEXT, (p) => p.u32(1).str(C.BASE_ALLOCATION));
  optReply(b, C.OPT_SET_META_CONTEXT, C.REP_ACK);
  gate(3);
  optReply(b, C.OPT_GO, C.REP_INFO, (p) => p.u16(C.INFO_EXPORT).u64(SIZE).u16(C.FLAG_HAS_FLAGS | C.FLAG_SEND_FLUSH));
  optReply(b, C.OPT_GO, C.REP_INFO, (p) => p.u16(C.INFO_BLOCK_SIZE).u32(1).u32(4096).u32(32 * 1024 * 1024));
  optReply(b, C.OPT_GO, C.REP_ACK);
  gate(4);
  // Handles 2..5: read 8 KiB at 0, block status of 64 KiB, read 4 KiB at 8 KiB (fails), flush.
  chunk(b, 0, C.REPLY_TYPE_OFFSET_DATA, 2, (p) => p.u64(0).zeros(4096));
  chunk(b, 0, C.REPLY_TYPE_BLOCK_STATUS, 3, (p) => p.u32(1).u32(4096).u32(0).u32(61440).u32(C.STATE_HOLE | C.STATE_ZERO));
  chunk(b, C.REPLY_FLAG_DONE, C.REPLY_TYPE_OFFSET_HOLE, 2, (p) => p.u64(4096).u32(4096));
  chunk(b, C.REPLY_FLAG_DONE, C.REPLY_TYPE_NONE, 3);
  chunk(b, C.REPLY_FLAG_DONE, C.REPLY_TYPE_ERROR_OFFSET, 4, (p) => p.u32(5).u16(4).str('oops').u64(8192));
  b.u32(C.SIMPLE_REPLY_MAGIC).u32(0).u64(5);
  gate(8);
  return { bytes: Uint8Array.from(b.parts), gates };
}

/** Runs the client against `bytes`: every command must settle, typed. Returns how many succeeded. */
async function client(bytes: Uint8Array, gates: { end: number; writes: number }[]): Promise<number> {
  const wire = new ScriptWire(bytes, gates);
  const { info } = await negotiate(wire, 'disk', 'nbd://fuzz/disk');
  const conn = new NbdConnection(wire, info, 'nbd://fuzz/disk', 8);
  const results = await Promise.allSettled([
    conn.send({ type: C.CMD_READ, offset: 0, length: 8192, into: new Uint8Array(8192) }),
    conn.send({ type: C.CMD_BLOCK_STATUS, offset: 0, length: 65536 }),
    conn.send({ type: C.CMD_READ, offset: 8192, length: 4096, into: new Uint8Array(4096) }),
    conn.send({ type: C.CMD_FLUSH, offset: 0, length: 0 }),
  ]);
  wire.destroy();
  let ok = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') ok++;
    else if (!(r.reason instanceof VdiskError)) throw r.reason;
  }
  if (ok === 0) throw (results[0] as PromiseRejectedResult).reason;
  return ok;
}

describe('net-nbd fuzz: hostile server streams', () => {
  it('the unmutated script: read and block status succeed, the error chunk fails its read', async () => {
    const s = script();
    const wire = new ScriptWire(s.bytes, s.gates);
    const { info } = await negotiate(wire, 'disk', 'nbd://fuzz/disk');
    assert.equal(info.size, SIZE);
    assert.equal(info.allocationContext, 1);
    const conn = new NbdConnection(wire, info, 'nbd://fuzz/disk', 8);
    const into = new Uint8Array(8192).fill(7);
    const [read, status, bad, flush] = await Promise.allSettled([
      conn.send({ type: C.CMD_READ, offset: 0, length: 8192, into }),
      conn.send({ type: C.CMD_BLOCK_STATUS, offset: 0, length: 65536 }),
      conn.send({ type: C.CMD_READ, offset: 8192, length: 4096, into: new Uint8Array(4096) }),
      conn.send({ type: C.CMD_FLUSH, offset: 0, length: 0 }),
    ]);
    assert.equal(read.status, 'fulfilled');
    assert.ok(into.every((x) => x === 0));
    assert.deepEqual(status.status === 'fulfilled' ? status.value : undefined, [{ length: 4096, flags: 0 }, { length: 61440, flags: 3 }]);
    assert.ok(bad.status === 'rejected' && bad.reason instanceof IoError && bad.reason.message === 'Input/output error');
    assert.equal(flush.status, 'fulfilled');
  });

  it('targeted lies: bad magic, unknown handle, oversized and overrunning chunks, a stream cut short', async () => {
    const s = script();
    const transmission = (s.gates[3] as { end: number }).end;
    const cases: [string, (b: Uint8Array, v: DataView) => void][] = [
      ['bad initial magic', (b) => (b[0] = 0)],
      ['oversized option reply', (_b, v) => v.setUint32(18 + 16, 0xffffffff)],
      ['bad reply magic', (_b, v) => v.setUint32(transmission, 0xdeadbeef)],
      ['unknown handle', (_b, v) => v.setUint32(transmission + 12, 99)],
      ['data chunk longer than the read', (_b, v) => v.setUint32(transmission + 16, 0x7fffffff)],
      ['data chunk outside the read', (_b, v) => v.setUint32(transmission + 24, 0x100000)],
    ];
    for (const [label, lie] of cases) {
      const bytes = new Uint8Array(s.bytes);
      lie(bytes, new DataView(bytes.buffer));
      await assert.rejects(client(bytes, s.gates), (e: unknown) => e instanceof VdiskError && e.code === 'EIO', label);
    }
    await assert.rejects(client(s.bytes.subarray(0, transmission + 30), s.gates.map((g) => ({ ...g, end: Math.min(g.end, transmission + 30) }))), VdiskError);
  });

  it('mutated streams end in success or typed errors, never a hang or an untyped failure', async () => {
    const s = script();
    const next = rng(0x6e6264);
    await fuzzCases(iterations(400), async () => {
      const bytes = new Uint8Array(s.bytes);
      const n = 1 + Math.floor(next() * 3);
      for (let k = 0; k < n; k++) mutate(bytes, next);
      return client(bytes, s.gates);
    });
  });
});
