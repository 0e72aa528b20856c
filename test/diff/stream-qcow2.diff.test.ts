/**
 * qcow2 streamed out (convertToStream): for cluster sizes, refcount widths,
 * compat levels, extended L2 and zlib/zstd compression, the bytes produced
 * equal the length promised and measure's exact size, qemu-img check finds
 * nothing, and qemu-img compare finds the source's contents.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, openSync, writeSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';

import { convertToStream, type ConvertToStreamOptions } from '../../src/jobs/convert-stream.js';
import { measure } from '../../src/jobs/measure.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { pattern } from '../helpers/ro-images.js';

const dir = tmpDir('vdisk-stream-qcow2-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (name: string): string => `${cwd}/${name}`;

/** Streams `source` into `out`; returns the promised length, the bytes seen and their sha256. */
async function streamTo(source: string, out: string, opts: ConvertToStreamOptions): Promise<{ length: number; bytes: number; sha: string }> {
  const o = await convertToStream(at(source), { targetFormat: 'qcow2', ...opts });
  const hash = createHash('sha256');
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(o.stream, count, createWriteStream(at(out)));
  return { length: o.length, bytes, sha: hash.digest('hex') };
}

interface CheckJson {
  'check-errors': number;
  corruptions?: number;
  leaks?: number;
  'image-end-offset'?: number;
}

/** Every promise a stream makes, checked against qemu-img. */
async function streamAndVerify(source: string, opts: ConvertToStreamOptions, label: string): Promise<{ length: number; sha: string }> {
  const out = 'out.qcow2';
  const got = await streamTo(source, out, opts);
  assert.equal(got.bytes, got.length, `${label}: bytes produced == length promised`);
  const m = await measure(at(source), { targetFormat: 'qcow2', options: opts.options as string | undefined, compress: opts.compress, sparseSize: opts.sparseSize, exact: true });
  assert.equal(m.exactSize, got.length, `${label}: measure exact == length`);
  const check = qemuImg(['check', '--output=json', at(out)]);
  assert.equal(check.status, 0, `${label}: qemu-img check: ${check.stdout}${check.stderr}`);
  const report = JSON.parse(check.stdout) as CheckJson;
  assert.equal(report['check-errors'], 0, label);
  assert.equal(report.corruptions ?? 0, 0, label);
  assert.equal(report.leaks ?? 0, 0, label);
  assert.equal(report['image-end-offset'], got.length, `${label}: image end == file end`);
  const cmp = qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', at(source), at(out)]);
  assert.equal(cmp.status, 0, `${label}: qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
  return { length: got.length, sha: got.sha };
}

type Info = { 'virtual-size': number; 'cluster-size': number; 'format-specific': { data: Record<string, unknown> } };
const info = (file: string): Info => JSON.parse(qemuImgOk(['info', '--output=json', at(file)])) as Info;

const SIZE = 5 * 1024 * 1024 + 1234;

describe('qcow2 streamed out', () => {
  before(() => {
    if (!hasQemu) return;
    // Mixed: noise, compressible text, zeros written as data, holes, a partial last cluster.
    qemuImgOk(['create', '-q', '-f', 'raw', at('mixed.raw'), String(SIZE)]);
    qemuIo(at('mixed.raw'), ['write -P 7 1000 3000', 'write -P 9 3M 70000', 'write -z 4M 128k', `write -P 5 ${SIZE - 700} 700`], 'raw');
    writeAt(at('mixed.raw'), 64 * 1024, Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(30000)));
    writeAt(at('mixed.raw'), 1536 * 1024, noise(1024 * 1024 + 333));
    qemuImgOk(['create', '-q', '-f', 'raw', at('empty.raw'), '0']);
    qemuImgOk(['create', '-q', '-f', 'raw', at('one.raw'), '64k']);
    qemuIo(at('one.raw'), ['write -P 3 0 64k'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'raw', at('odd.raw'), '1000001']);
    qemuIo(at('odd.raw'), ['write -P 4 999000 1001'], 'raw');
  });

  const CASES: [string, ConvertToStreamOptions][] = [];
  for (const cs of ['512', '4k', '64k', '2M']) {
    CASES.push([`cluster_size=${cs}`, { options: `cluster_size=${cs}` }]);
    CASES.push([`cluster_size=${cs} -c`, { options: `cluster_size=${cs}`, compress: true }]);
  }
  for (const bits of ['1', '2', '16', '64']) CASES.push([`refcount_bits=${bits} -c`, { options: `refcount_bits=${bits},cluster_size=4k`, compress: true }]);
  CASES.push(['refcount_bits=1', { options: 'refcount_bits=1' }]);
  CASES.push(['refcount_bits=64 cluster_size=512', { options: 'refcount_bits=64,cluster_size=512' }]);
  CASES.push(['zstd -c', { options: 'compression_type=zstd', compress: true }]);
  CASES.push(['zstd -c 512', { options: 'compression_type=zstd,cluster_size=512', compress: true }]);
  CASES.push(['compat=0.10', { options: 'compat=0.10' }]);
  CASES.push(['compat=0.10 -c', { options: 'compat=0.10', compress: true }]);
  CASES.push(['extended_l2', { options: 'extended_l2=on,cluster_size=16k' }]);
  CASES.push(['extended_l2 -c', { options: 'extended_l2=on', compress: true }]);
  CASES.push(['lazy_refcounts', { options: 'lazy_refcounts=on', compress: true }]);
  CASES.push(['-S 0', { options: 'cluster_size=4k', sparseSize: 0 }]);
  CASES.push(['-S 0 -c', { options: 'cluster_size=4k', sparseSize: 0, compress: true }]);

  for (const [label, opts] of CASES) {
    it(`mixed source, ${label}`, async (t) => {
      if (!requireQemu(t)) return;
      await streamAndVerify('mixed.raw', opts, label);
    });
  }

  for (const source of ['empty.raw', 'one.raw', 'odd.raw']) {
    it(`${source}, plain and compressed`, async (t) => {
      if (!requireQemu(t)) return;
      for (const opts of [{}, { compress: true }, { options: 'cluster_size=512', compress: true }]) await streamAndVerify(source, opts, `${source} ${JSON.stringify(opts)}`);
    });
  }

  it('a qcow2 chain source (compressed, zero and discarded clusters, backing data) streams to what it reads as', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', at('base.qcow2'), '3M']);
    qemuIo(at('base.qcow2'), ['write -P 1 0 1M', 'write -c -P 2 2M 64k'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', at('base.qcow2'), '-F', 'qcow2', at('top.qcow2')]);
    qemuIo(at('top.qcow2'), ['write -z 64k 128k', 'discard 512k 64k', 'write -c -P 3 1536k 128k', 'write -P 4 2900k 4k'], 'qcow2');
    for (const opts of [{}, { compress: true, options: 'cluster_size=4k' }]) {
      const got = await streamTo('top.qcow2', 'out.qcow2', opts);
      assert.equal(got.bytes, got.length);
      const check = JSON.parse(qemuImgOk(['check', '--output=json', at('out.qcow2')])) as CheckJson;
      assert.equal(check['check-errors'] + (check.corruptions ?? 0) + (check.leaks ?? 0), 0);
      const cmp = qemuImg(['compare', at('top.qcow2'), at('out.qcow2')]);
      assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
    }
  });

  it('the header says what was asked: compat, compression type, refcount width, extended L2', async (t) => {
    if (!requireQemu(t)) return;
    await streamAndVerify('mixed.raw', { options: 'compression_type=zstd,refcount_bits=4,lazy_refcounts=on', compress: true }, 'zstd');
    const v3 = info('out.qcow2');
    assert.equal(v3['virtual-size'], Math.ceil(SIZE / 512) * 512);
    assert.deepEqual(v3['format-specific'].data, { compat: '1.1', 'compression-type': 'zstd', 'lazy-refcounts': true, 'refcount-bits': 4, corrupt: false, 'extended-l2': false });
    await streamAndVerify('mixed.raw', { options: 'compat=0.10,cluster_size=2k' }, 'v2');
    const v2 = info('out.qcow2');
    assert.equal(v2['cluster-size'], 2048);
    assert.deepEqual(v2['format-specific'].data, { compat: '0.10', 'compression-type': 'zlib', 'refcount-bits': 16 });
  });

  it('compressing twice gives the same bytes as keeping the compressed units', async (t) => {
    if (!requireQemu(t)) return;
    const kept = await streamTo('mixed.raw', 'a.qcow2', { compress: true, options: 'cluster_size=4k', spillMemory: 64 * 1024, spillDir: cwd });
    const twice = await streamTo('mixed.raw', 'b.qcow2', { compress: true, options: 'cluster_size=4k', compressTwice: true });
    assert.equal(kept.length, twice.length);
    assert.equal(kept.sha, twice.sha);
  });

  it('compressed output is smaller than plain, plain output holds the data clusters only', async (t) => {
    if (!requireQemu(t)) return;
    const plain = await streamTo('mixed.raw', 'p.qcow2', {});
    const packed = await streamTo('mixed.raw', 'c.qcow2', { compress: true });
    assert.ok(packed.length < plain.length - 1024 * 1024, `${packed.length} < ${plain.length}`);
    const allocated = JSON.parse(qemuImgOk(['measure', '--output=json', '-O', 'qcow2', at('mixed.raw')])) as { required: number };
    assert.ok(plain.length <= allocated.required, `${plain.length} <= qemu's required ${allocated.required}`);
  });

  it('refuses what a stream cannot carry', async (t) => {
    if (!requireQemu(t)) return;
    for (const options of ['backing_file=x.qcow2', 'backing_file=x.raw,backing_fmt=raw', 'data_file=d.raw', 'encrypt.format=luks,encrypt.key-secret=s', 'encryption=on', 'preallocation=metadata', 'preallocation=full']) {
      await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'qcow2', options }), (e: Error & { code?: string }) => e.code === 'EUNSUPPORTED' && /qcow2 image written to a stream/.test(e.message) && e.message.includes(options.split(/[=,]/)[0]!), options);
    }
    // Bad values keep qemu-img's messages.
    await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'qcow2', options: 'cluster_size=3000' }), /Cluster size must be a power of two between 512 and 2048k/);
    await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'qcow2', options: 'compat=0.10,compression_type=zstd' }), /Non-zlib compression type is only supported with compatibility level 1.1/);
  });
});

/** Writes `data` into `file` at `offset`. */
function writeAt(file: string, offset: number, data: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Incompressible bytes, the same every run (xorshift32). */
const noise = (n: number): Uint8Array => pattern(n, 0x9e3779b9);
