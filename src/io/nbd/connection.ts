/**
 * The transmission phase: requests with handles, a reader loop matching
 * replies (simple or structured chunks) to them, a bound on requests in
 * flight. A server that breaks the protocol kills the connection: every
 * request in flight fails with the same typed error, none hangs.
 */
import type { VdiskError } from '../../core/errors.js';
import * as codec from './codec.js';
import * as C from './constants.js';
import { Coverage } from './coverage.js';
import { named, serverError } from './errors.js';
import type { ExportInfo } from './handshake.js';
import { readBytes, type Wire } from './wire.js';
import { Limiter } from '../http/limiter.js';

/** A command to send. */
export interface Command {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  readonly flags?: number | undefined;
  /** NBD_CMD_WRITE's payload. */
  readonly data?: Uint8Array | undefined;
  /** NBD_CMD_READ's destination (`length` bytes). */
  readonly into?: Uint8Array | undefined;
}

interface Pending extends Command {
  readonly coverage: Coverage;
  error: VdiskError | undefined;
  status: codec.StatusDescriptor[] | undefined;
  resolve(status: codec.StatusDescriptor[] | undefined): void;
  reject(err: unknown): void;
}

/** One NBD connection in the transmission phase. */
export class NbdConnection {
  readonly info: ExportInfo;
  readonly #wire: Wire;
  readonly #name: string;
  /** Requests in flight, at most `maxInFlight`. */
  readonly #limit: Limiter;
  readonly #pending = new Map<number, Pending>();
  #nextHandle = 1;
  #dead: VdiskError | undefined;
  #closing = false;

  constructor(wire: Wire, info: ExportInfo, name: string, maxInFlight: number) {
    this.#wire = wire;
    this.info = info;
    this.#name = name;
    this.#limit = new Limiter(maxInFlight);
    void this.#readLoop();
  }

  /** Why the connection is unusable, once it is. */
  get failure(): VdiskError | undefined {
    return this.#dead;
  }

  /** Sends a command and waits for its whole reply; block status commands resolve to their descriptors. */
  send(cmd: Command): Promise<codec.StatusDescriptor[] | undefined> {
    return this.#limit.run(async () => {
      if (this.#dead) throw this.#dead;
      const handle = this.#handle();
      const done = new Promise<codec.StatusDescriptor[] | undefined>((resolve, reject) => {
        this.#pending.set(handle, { ...cmd, coverage: new Coverage(), error: undefined, status: undefined, resolve, reject });
      });
      // Failed while the request is still being written: handled below, never an unhandled rejection.
      done.catch(() => undefined);
      this.#wire.setBusy(true);
      // Header and payload go out back to back, so concurrent commands never interleave.
      const header = this.#wire.write(codec.encodeRequest({ type: cmd.type, flags: cmd.flags ?? 0, handle, offset: cmd.offset, length: cmd.length }));
      const payload = cmd.data ? this.#wire.write(cmd.data) : undefined;
      await Promise.all([header, payload]).catch(() => undefined); // a dead socket fails the reply instead
      return await done;
    });
  }

  /** NBD_CMD_DISC, then the socket goes; requests in flight fail. */
  async disconnect(): Promise<void> {
    if (this.#dead) return;
    this.#closing = true;
    const disc = this.#wire.write(codec.encodeRequest({ type: C.CMD_DISC, flags: 0, handle: 0, offset: 0, length: 0 }));
    // Ended, not destroyed: the request must reach the server before the socket closes.
    if (this.#wire.end) this.#wire.end();
    else this.#wire.destroy();
    await disc.catch(() => undefined);
    this.#fail(codec.protocolError('connection closed'));
  }

  /** Tears the connection down: requests in flight fail with `err`. */
  kill(err: VdiskError | undefined): void {
    this.#wire.destroy(err);
    this.#fail(err ?? codec.protocolError('connection closed'));
  }

  #handle(): number {
    do this.#nextHandle = (this.#nextHandle % 0xffffffff) + 1;
    while (this.#pending.has(this.#nextHandle));
    return this.#nextHandle;
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const magic = new DataView((await readBytes(this.#wire, 4)).buffer).getUint32(0);
        if (magic === C.SIMPLE_REPLY_MAGIC) await this.#simple();
        else if (magic === C.STRUCTURED_REPLY_MAGIC && this.info.structured) await this.#chunk();
        else throw codec.protocolError(`invalid reply magic 0x${magic.toString(16)}`);
      }
    } catch (err) {
      const e = this.#closing && this.#pending.size === 0 ? undefined : named(err, this.#name);
      this.#wire.destroy(e);
      this.#fail(e ?? codec.protocolError('connection closed'));
    }
  }

  #take(handle: number): Pending {
    const p = this.#pending.get(handle);
    if (!p) throw codec.protocolError(`reply to unknown handle ${handle}`);
    return p;
  }

  async #simple(): Promise<void> {
    const r = codec.parseSimpleReply(await readBytes(this.#wire, codec.SIMPLE_REST));
    const p = this.#take(r.handle);
    if (r.error !== 0) p.error = serverError(r.error, this.#name, p.offset);
    else if (p.type === C.CMD_READ) {
      // With structured replies a read's data only comes in chunks: the stream can no longer be parsed.
      if (this.info.structured) throw codec.protocolError('simple reply with data to a read');
      await this.#wire.readInto(p.into as Uint8Array);
      p.coverage.add(p.offset, p.offset + p.length);
    } else if (p.type === C.CMD_BLOCK_STATUS) throw codec.protocolError('simple reply to a block status request');
    this.#finish(r.handle, p);
  }

  async #chunk(): Promise<void> {
    const h = codec.parseChunkHeader(await readBytes(this.#wire, codec.STRUCTURED_REST));
    const p = this.#take(h.handle);
    if (h.type === C.REPLY_TYPE_OFFSET_DATA && p.type === C.CMD_READ) await this.#data(p, h.length);
    else if (h.type === C.REPLY_TYPE_NONE) {
      if (h.length !== 0 || (h.flags & C.REPLY_FLAG_DONE) === 0) throw codec.protocolError('NBD_REPLY_TYPE_NONE with a payload or not final');
    } else {
      if (h.length > codec.MAX_CHUNK) throw codec.protocolError(`chunk of ${h.length} bytes (at most ${codec.MAX_CHUNK})`);
      this.#small(p, h.type, await readBytes(this.#wire, h.length));
    }
    if (h.flags & C.REPLY_FLAG_DONE) this.#finish(h.handle, p);
  }

  /** NBD_REPLY_TYPE_OFFSET_DATA: read straight into the caller's buffer once the range is checked. */
  async #data(p: Pending, length: number): Promise<void> {
    if (length <= 8 || length - 8 > p.length) throw codec.protocolError(`data chunk of ${length} bytes for a read of ${p.length}`);
    const offset = codec.chunkOffset(await readBytes(this.#wire, 8), length - 8, p);
    if (!p.coverage.add(offset, offset + length - 8)) throw codec.protocolError(`data chunk at ${offset} overlaps an earlier chunk`);
    const at = offset - p.offset;
    await this.#wire.readInto((p.into as Uint8Array).subarray(at, at + length - 8));
  }

  /** Every chunk but data: holes, block status, errors. */
  #small(p: Pending, type: number, b: Uint8Array): void {
    if (type === C.REPLY_TYPE_OFFSET_HOLE && p.type === C.CMD_READ) {
      if (b.length !== 12) throw codec.protocolError(`hole chunk of ${b.length} bytes (expected 12)`);
      const size = new DataView(b.buffer, b.byteOffset).getUint32(8);
      const offset = codec.chunkOffset(b, size, p);
      if (!p.coverage.add(offset, offset + size)) throw codec.protocolError(`hole chunk at ${offset} overlaps an earlier chunk`);
      (p.into as Uint8Array).fill(0, offset - p.offset, offset - p.offset + size);
    } else if (type === C.REPLY_TYPE_BLOCK_STATUS && p.type === C.CMD_BLOCK_STATUS) {
      const st = codec.parseBlockStatus(b, p.length);
      if (st.id === this.info.allocationContext) p.status ??= st.descriptors;
    } else if (type & C.REPLY_TYPE_ERROR_BIT) {
      // Unknown error types still fail the request; the stream stays parseable (the length was bounded).
      const known = type === C.REPLY_TYPE_ERROR || type === C.REPLY_TYPE_ERROR_OFFSET;
      const e = known ? codec.parseErrorChunk(b, type) : { error: 5, message: '' };
      p.error ??= serverError(e.error, this.#name, p.offset, e.message);
    } else throw codec.protocolError(`unexpected chunk type ${type} for command ${p.type}`);
  }

  #finish(handle: number, p: Pending): void {
    this.#pending.delete(handle);
    if (this.#pending.size === 0) this.#wire.setBusy(false);
    if (p.error) return p.reject(p.error);
    const broken =
      p.type === C.CMD_READ && p.coverage.total !== p.length
        ? `read of ${p.length} bytes at ${p.offset} answered with ${p.coverage.total}`
        : p.type === C.CMD_BLOCK_STATUS && !p.status
          ? `no base:allocation status for ${p.length} bytes at ${p.offset}`
          : undefined;
    if (broken === undefined) return p.resolve(p.status);
    // This request is already out of the table: fail it here, then the connection.
    const err = named(codec.protocolError(broken), this.#name);
    p.reject(err);
    throw err;
  }

  #fail(err: VdiskError): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
  }
}
