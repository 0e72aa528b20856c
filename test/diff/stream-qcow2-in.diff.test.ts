/**
 * qcow2 read from a forward-only stream (qcow2Driver.readForward): the
 * guest writes it produces, applied to a buffer, equal what
 * `qemu-img convert -O raw` makes of the same image, for qemu-made images
 * of every cluster size, compressed (zlib, zstd), v2, extended L2, and for
 * layouts whose tables follow their data (through the spill, within its
 * bound). Hostile, truncated and unsupported input ends in typed errors.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { AbortError, CorruptImageError, PolicyError, UnsupportedError, VdiskError } from '../../src/core/errors.js';
import type { SpillSettings } from '../../src/formats/driver.js';
import { qcow2Driver } from '../../src/formats/qcow2/index.js';
import { bufferSource } from '../helpers/forward-buffer.js';
import { expectTypedOrOk, iterations, mutate, rng } from '../helpers/fuzz.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-stream-qcow2-in-');
after(() => dir.cleanup());
const at = (name: string): string => join(dir.path, name);

/** Virtual size: not a multiple of 64 KiB, so the last cluster is partial. */
const SIZE = 8 * 1024 * 1024 + 4608;

/** Noise, patterns, zeros and a partial last cluster, as a raw file. */
function makeSource(): void {
  const buf = new Uint8Array(SIZE);
  let x = 0x9e3779b9;
  for (let i = 2_000_000; i < 3_000_000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
  buf.fill(0x11, 0, 1024 * 1024);
  buf.fill(0x22, 3 * 1024 * 1024, 3 * 1024 * 1024 + 512 * 1024);
  buf.fill(0x33, 7 * 1024 * 1024 + 512, 7 * 1024 * 1024 + 100_000);
  buf.fill(0x44, SIZE - 3000, SIZE - 100);
  writeFileSync(at('src.raw'), buf);
}

/** Reads `file` forward; returns the guest image the writes make (checked to stay in bounds and never overlap). */
async function readForward(file: string, spill?: SpillSettings, signal?: AbortSignal): Promise<Uint8Array> {
  return readForwardBytes(readFileSync(file), file, spill, signal);
}

async function readForwardBytes(bytes: Uint8Array, name: string, spill?: SpillSettings, signal?: AbortSignal): Promise<Uint8Array> {
  const source = bufferSource(bytes, name);
  const image = await qcow2Driver.readForward!(source, { name, spill, signal });
  const size = image.size ?? 0;
  const out = new Uint8Array(size);
  const seen = new Uint8Array(size);
  for await (const w of image.writes()) {
    const n = 'data' in w ? w.data.length : w.length;
    assert.ok(w.offset >= 0 && w.offset + n <= size, `write [${w.offset}, +${n}) inside the image`);
    assert.ok(!seen.subarray(w.offset, w.offset + n).some((b) => b !== 0), `write at ${w.offset} overlaps an earlier one`);
    seen.fill(1, w.offset, w.offset + n);
    if ('data' in w) out.set(w.data, w.offset);
  }
  assert.equal(image.finalSize(), size);
  assert.equal(source.position, bytes.length, 'the stream is read to its end');
  return out;
}

/** Reads hostile bytes forward, checking only that every write lies inside the image (its size may be anything). */
async function readHostile(bytes: Uint8Array, name: string): Promise<void> {
  const image = await qcow2Driver.readForward!(bufferSource(bytes, name), { name, spill: { limit: 4 * 1024 * 1024 } });
  const size = image.size ?? 0;
  for await (const w of image.writes()) {
    const n = 'data' in w ? w.data.length : w.length;
    if (w.offset < 0 || w.offset + n > size) throw new Error(`${name}: write [${w.offset}, +${n}) outside the image of ${size} bytes`);
  }
}

/** What qemu-img reads from `file`. */
function qemuRaw(file: string): Uint8Array {
  const out = `${file}.qemu.raw`;
  qemuImgOk(['convert', '-O', 'raw', file, out]);
  return readFileSync(out);
}

async function assertSameAsQemu(file: string, spill?: SpillSettings): Promise<void> {
  const got = await readForward(file, spill);
  const want = qemuRaw(file);
  assert.equal(got.length, want.length, `${file}: virtual size`);
  assert.ok(Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0, `${file}: guest bytes equal qemu-img convert -O raw`);
}

function convert(name: string, args: readonly string[]): string {
  const file = at(name);
  qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', ...args, at('src.raw'), file]);
  return file;
}

/**
 * The image with every L2 table and the L1 table moved to the end of the
 * file (tables after their data). Refcounts are left stale: only reads
 * matter here, and qemu-img reads such an image all the same.
 */
function tablesLast(file: string, out: string): string {
  const src = readFileSync(file);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const cs = 2 ** view.getUint32(20);
  const l1Size = view.getUint32(36);
  const l1Off = Number(view.getBigUint64(40));
  const end = Math.ceil(src.length / cs) * cs;
  const l1 = new Uint8Array(src.subarray(l1Off, l1Off + l1Size * 8));
  const l1View = new DataView(l1.buffer);
  const moved: Uint8Array[] = [];
  for (let i = 0; i < l1Size; i++) {
    const l2 = Number(l1View.getBigUint64(i * 8) & 0x00fffffffffffe00n);
    if (l2 === 0) continue;
    moved.push(new Uint8Array(src.subarray(l2, l2 + cs)));
    src.fill(0, l2, l2 + cs);
    l1View.setBigUint64(i * 8, (1n << 63n) | BigInt(end + (moved.length - 1) * cs));
  }
  src.fill(0, l1Off, l1Off + l1Size * 8);
  const l1At = end + moved.length * cs;
  view.setBigUint64(40, BigInt(l1At));
  const image = new Uint8Array(l1At + Math.ceil((l1Size * 8) / cs) * cs);
  image.set(src);
  moved.forEach((t, k) => image.set(t, end + k * cs));
  image.set(l1, l1At);
  writeFileSync(out, image);
  return out;
}

function isTyped(err: unknown, cls: new (...a: never[]) => VdiskError, reason?: string): boolean {
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  if (reason !== undefined) assert.equal(err.reason, reason);
  return true;
}

describe('qcow2 read forward', () => {
  before(makeSource);

  it('plain images of cluster size 512, 64k and 2M give qemu-img\'s bytes without spilling a byte', async (t) => {
    if (!requireQemu(t)) return;
    for (const cs of ['512', '65536', '2M']) await assertSameAsQemu(convert(`plain-${cs}.qcow2`, ['-o', `cluster_size=${cs}`]), { limit: 0 });
  });

  it('compressed images (zlib and zstd, 4k and 64k clusters) give qemu-img\'s bytes', async (t) => {
    if (!requireQemu(t)) return;
    for (const type of ['zlib', 'zstd']) {
      for (const cs of ['4096', '65536']) await assertSameAsQemu(convert(`c-${type}-${cs}.qcow2`, ['-c', '-o', `compression_type=${type},cluster_size=${cs}`]));
    }
  });

  it('v2 images (compat=0.10), plain and compressed', async (t) => {
    if (!requireQemu(t)) return;
    await assertSameAsQemu(convert('v2.qcow2', ['-o', 'compat=0.10']), { limit: 0 });
    await assertSameAsQemu(convert('v2c.qcow2', ['-c', '-o', 'compat=0.10']));
  });

  it('extended L2 entries: allocated, zero and unallocated subclusters', async (t) => {
    if (!requireQemu(t)) return;
    const file = at('extl2.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=64k', file, '4M']);
    qemuIo(file, ['write -P 0x5a 4k 4k', 'write -P 0x6b 70k 10k', 'write -z 1M 64k', 'write -P 0x7c 2M 128k', 'write -z 2M 8k'], 'qcow2');
    await assertSameAsQemu(file, { limit: 0 });
  });

  it('internal snapshots are passed over: only the active L1 table is read; an empty image reads as nothing', async (t) => {
    if (!requireQemu(t)) return;
    const file = at('snap.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', file, '4M']);
    qemuIo(file, ['write -P 0x61 0 1M', 'write -P 0x62 2M 64k'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 'one', file]);
    qemuIo(file, ['write -P 0x63 512k 1M', 'write -z 2M 64k', 'write -P 0x64 3M 4k'], 'qcow2');
    await assertSameAsQemu(file);
    const empty = at('empty.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', empty, '0']);
    assert.equal((await readForward(empty, { limit: 0 })).length, 0);
  });

  it('an image qemu reshaped (freed clusters reused, the L1 table moved by a resize) needs the spill', async (t) => {
    if (!requireQemu(t)) return;
    const file = at('reshaped.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-o', 'cluster_size=512', file, '16M']);
    qemuIo(file, ['write -P 0x41 0 256k', 'write -P 0x42 8M 64k', 'discard 0 128k', 'write -P 0x43 8M 128k', 'write -P 0x44 12M 32k'], 'qcow2');
    qemuImgOk(['resize', file, '64M']);
    await assertSameAsQemu(file);
    await assert.rejects(readForward(file, { limit: 0 }), (err) => isTyped(err, PolicyError, 'spill-limit'));
  });

  it('tables after their data: placed through the spill, in memory or in a file that leaves nothing behind', async (t) => {
    if (!requireQemu(t)) return;
    for (const [name, args] of [['last-plain', []], ['last-zstd', ['-c', '-o', 'compression_type=zstd']]] as const) {
      const file = tablesLast(convert(`${name}.src.qcow2`, args), at(`${name}.qcow2`));
      await assertSameAsQemu(file);
      const spillDir = tmpDir('vdisk-stream-qcow2-in-spill-');
      try {
        await assertSameAsQemu(file, { memory: 0, dir: spillDir.path });
        assert.deepEqual(readdirSync(spillDir.path), [], 'no spill file is left behind');
      } finally {
        spillDir.cleanup();
      }
      await assert.rejects(readForward(file, { limit: 256 * 1024 }), (err) => {
        isTyped(err, PolicyError, 'spill-limit');
        const v = err as PolicyError;
        assert.equal(typeof v.offset, 'number');
        assert.match(v.message, new RegExp(`at offset ${v.offset}\\b`));
        return true;
      });
    }
  });

  it('refuses backing files, external data files and encryption', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-f', 'qcow2', at('base.qcow2'), '1M']);
    qemuImgOk(['create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', at('overlay.qcow2')]);
    qemuImgOk(['create', '-f', 'qcow2', '-o', `data_file=${at('data.raw')}`, at('datafile.qcow2'), '1M']);
    qemuImgOk(['create', '-f', 'qcow2', '--object', 'secret,id=s0,data=pw', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', at('luks.qcow2'), '1M']);
    for (const [name, re] of [['overlay', /backing file \('base.qcow2'\)/], ['datafile', /external data file/], ['luks', /encrypted/]] as const) {
      await assert.rejects(readForward(at(`${name}.qcow2`)), (err) => isTyped(err, UnsupportedError) && re.test((err as Error).message));
    }
  });

  it('a stream cut anywhere ends in a typed error naming the offset, never in wrong bytes', async (t) => {
    if (!requireQemu(t)) return;
    for (const file of [at('plain-65536.qcow2'), at('c-zlib-4096.qcow2')]) {
      const bytes = readFileSync(file);
      const want = qemuRaw(file);
      const next = rng(17);
      const cuts = [0, 10, 100, 511, 512, 4096, 65536, 65537, 200_000, bytes.length - 1];
      for (let i = 0; i < 20; i++) cuts.push(Math.floor(next() * bytes.length));
      for (const cut of cuts) {
        try {
          const got = await readForwardBytes(bytes.subarray(0, cut), file);
          // A cut past the last byte any table names loses nothing.
          assert.ok(Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0, `cut at ${cut}: same bytes`);
        } catch (err) {
          assert.ok(err instanceof CorruptImageError, `cut at ${cut}: ${String(err)}`);
          if (cut >= 65536 * 4) {
            assert.equal(err.reason, 'stream-ended');
            assert.match(err.message, new RegExp(`stream ended at offset ${cut}\\b`));
          }
        }
      }
    }
  });

  it('not qcow2, or aborted: typed errors', async (t) => {
    if (!requireQemu(t)) return;
    await assert.rejects(readForwardBytes(new Uint8Array(4096), 'zeros'), (err) => isTyped(err, CorruptImageError));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(readForward(at('plain-65536.qcow2'), undefined, ac.signal), (err) => isTyped(err, AbortError));
  });

  it('mutated images: a typed error or an image, never a crash or a hang', async (t) => {
    if (!requireQemu(t)) return;
    const file = at('fuzz.qcow2');
    qemuImgOk(['create', '-f', 'qcow2', '-o', 'cluster_size=4k', file, '1M']);
    qemuIo(file, ['write -P 0x5a 0 64k', 'write -P 0x6b 600k 8k', 'write -z 900k 4k'], 'qcow2');
    const c = at('fuzz-c.qcow2');
    qemuImgOk(['convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=4k', file, c]);
    const seeds = [readFileSync(file), readFileSync(c)];
    const next = rng(4242);
    const n = iterations(300);
    for (let i = 0; i < n; i++) {
      const buf = new Uint8Array(seeds[i % 2]!);
      // The header and the first tables live in the first clusters.
      mutate(buf, next, 6 * 4096);
      await expectTypedOrOk(`mutation ${i}`, () => readHostile(buf, `fuzz-${i}`));
    }
  });
});
