/**
 * qcow2 describe(), create option checks, probe and open-time refusals,
 * compared with what qemu-img 7.2 prints and does.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { VdiskError } from '../../../src/core/errors.js';
import type { OptionValue } from '../../../src/formats/driver.js';
import { openQcow2Snapshot, qcow2Driver } from '../../../src/formats/qcow2/index.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { createFile, createOn } from './helpers.js';

const qemuSkip = !hasQemu && process.env['CI'] !== 'true' ? 'qemu-img not installed' : false;

async function describeFile(path: string): Promise<Record<string, unknown>> {
  const dev = await BlockDevice.open(path);
  try {
    const d = await dev.top.image.describe();
    return { clusterSize: d.clusterSize, dirty: d.dirty, formatSpecific: d.formatSpecific, snapshots: d.snapshots };
  } finally {
    await dev.close();
  }
}

describe('qcow2 describe() vs qemu-img info', { skip: qemuSkip }, () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tmpDir();
  });
  after(() => dir.cleanup());

  const variants = ['compat=0.10', 'compat=1.1', 'lazy_refcounts=on', 'extended_l2=on', 'compression_type=zstd', 'refcount_bits=1,cluster_size=4k'];
  variants.forEach((opts, i) => {
    it(`matches format-specific data for ${opts} (qemu-made and vdisk-made)`, async (t) => {
      if (!requireQemu(t)) return;
      const q = join(dir.path, `q${i}.qcow2`);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', opts, q, '1M']);
      const info = JSON.parse(qemuImgOk(['info', '--output=json', q])) as Record<string, unknown>;
      const mine = await describeFile(q);
      assert.deepEqual(mine['formatSpecific'], info['format-specific']);
      assert.equal(mine['clusterSize'], info['cluster-size']);
      assert.equal(mine['dirty'], info['dirty-flag']);
      // The same options through vdisk's create.
      const v = join(dir.path, `v${i}.qcow2`);
      const o: Record<string, OptionValue> = {};
      for (const kv of opts.split(',')) {
        const [k, val] = kv.split('=') as [string, string];
        o[k] = val === 'on' ? true : k === 'cluster_size' ? 4096 : k === 'refcount_bits' ? Number(val) : val;
      }
      await createFile(v, 1024 * 1024, o);
      const vinfo = JSON.parse(qemuImgOk(['info', '--output=json', v])) as Record<string, unknown>;
      assert.deepEqual(vinfo['format-specific'], info['format-specific']);
      assert.equal(qemuImg(['check', v]).status, 0);
    });
  });

  it('lists snapshots and opens one read-only (convert -l)', async (t) => {
    if (!requireQemu(t)) return;
    const p = join(dir.path, 'snap.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', p, '1M']);
    qemuIo(p, ['write -P 0x61 0 64k'], 'qcow2');
    qemuImgOk(['snapshot', '-c', 'first', p]);
    qemuIo(p, ['write -P 0x62 0 64k'], 'qcow2');
    const info = JSON.parse(qemuImgOk(['info', '--output=json', p])) as { snapshots: Array<Record<string, unknown>> };
    const dev = await BlockDevice.open(p);
    try {
      const d = await dev.top.image.describe();
      assert.equal(d.snapshots?.length, 1);
      const s = d.snapshots![0]!;
      const q = info.snapshots[0]!;
      assert.equal(s.id, q['id']);
      assert.equal(s.name, q['name']);
      assert.equal(s.dateSec, q['date-sec']);
      assert.equal(s.dateNsec, q['date-nsec']);
      assert.equal(s.vmStateSize, q['vm-state-size']);
      const snap = await openQcow2Snapshot(dev.top.image, 'first');
      const ext = await snap.mapping(0, 65536);
      assert.equal(ext[0]?.kind, 'data');
      const buf = new Uint8Array(16);
      if (ext[0]?.kind === 'data') await ext[0].store.read(ext[0].hostOffset, buf);
      assert.deepEqual([...buf], new Array(16).fill(0x61));
      await snap.close();
    } finally {
      await dev.close();
    }
  });

  it('reports persistent bitmaps, and writes keep such images consistent for qemu-img', async (t) => {
    if (!requireQemu(t)) return;
    const p = join(dir.path, 'bm.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', p, '1M']);
    qemuImgOk(['bitmap', '--add', p, 'bm0']);
    qemuImgOk(['bitmap', '--add', '-g', '128k', '--disable', p, 'bm1']);
    const info = JSON.parse(qemuImgOk(['info', '--output=json', p])) as Record<string, unknown>;
    assert.deepEqual((await describeFile(p))['formatSpecific'], info['format-specific']);
    const dev = await BlockDevice.open(p, { readOnly: false });
    try {
      await dev.write(0, new Uint8Array(512).fill(1));
      // while open for writing, qemu sees the enabled bitmap as in use
      assert.match(qemuImgOk(['info', '-U', '--output=json', p]), /"in-use"/);
    } finally {
      await dev.close();
    }
    const after = JSON.parse(qemuImgOk(['info', '--output=json', p])) as Record<string, unknown>;
    assert.deepEqual(after['format-specific'], info['format-specific']);
    assert.equal(qemuImg(['check', p]).status, 0);
  });

  it('refuses read/write opens of an image with the corrupt bit', async (t) => {
    if (!requireQemu(t)) return;
    const p = join(dir.path, 'corrupt.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', p, '1M']);
    const b = readFileSync(p);
    b[79] = 2;
    writeFileSync(p, b);
    await assert.rejects(BlockDevice.open(p, { readOnly: false }), /qcow2: Image is corrupt; cannot be opened read\/write/);
    await (await BlockDevice.open(p)).close();
  });
});

describe('qcow2 create options', () => {
  const cases: Array<[Record<string, OptionValue>, RegExp]> = [
    [{ cluster_size: 1000 }, /^Cluster size must be a power of two between 512 and 2048k$/],
    [{ cluster_size: 4 * 1024 * 1024 }, /^Cluster size must be a power of two between 512 and 2048k$/],
    [{ compat: '0.10', lazy_refcounts: true }, /^Lazy refcounts only supported with compatibility level 1\.1 and above \(use version=v3 or greater\)$/],
    [{ refcount_bits: 3 }, /^Refcount width must be a power of two and may not exceed 64 bits$/],
    [{ compat: '0.10', refcount_bits: 8 }, /^Different refcount widths than 16 bits require compatibility level 1\.1 or above/],
    [{ compat: '0.10', compression_type: 'zstd' }, /^Non-zlib compression type is only supported/],
    [{ compression_type: 'lz4' }, /^Parameter 'compression-type' does not accept value 'lz4'$/],
    [{ compat: '2' }, /^Parameter 'version' does not accept value '2'$/],
    [{ extended_l2: true, cluster_size: 8192 }, /^Extended L2 entries are only supported with cluster sizes of at least 16384 bytes$/],
    [{ compat: '0.10', extended_l2: true }, /^Extended L2 entries are only supported with compatibility level 1\.1/],
    [{ preallocation: 'bogus' }, /^Parameter 'preallocation' does not accept value 'bogus'$/],
    [{ data_file_raw: true }, /^data-file-raw requires data-file$/],
    [{ backing_fmt: 'qcow2' }, /^Backing format cannot be used without backing file$/],
    [{ backing_file: 'b', preallocation: 'metadata' }, /^Backing file and preallocation can only be used at the same time if extended_l2 is on$/],
    [{ 'encrypt.format': 'luks' }, /^Parameter 'encrypt\.key-secret' is required for cipher$/],
    [{ 'encrypt.format': 'luks', 'encrypt.key-secret': 's0' }, /^No secret with id 's0'$/],
  ];
  for (const [opts, re] of cases) {
    it(`rejects ${JSON.stringify(opts)}`, async () => {
      await assert.rejects(createOn(new MemoryStore('x.qcow2'), 'x.qcow2', 1024 * 1024, opts), (e: unknown) => e instanceof VdiskError && re.test(e.message));
    });
  }

  it('refuses sizes whose L1 table would pass 32 MiB', async () => {
    await assert.rejects(createOn(new MemoryStore('x.qcow2'), 'x.qcow2', 2 ** 40, { cluster_size: 512 }), /The image size is too large for file format 'qcow2'/);
  });

  it('probes QFI\\xfb with version 2 and up, never qcow v1 (qemu reports later versions when opening)', async () => {
    const store = new MemoryStore('p.qcow2');
    await createOn(store, 'p.qcow2', 65536);
    const head = store.bytes().subarray(0, 512);
    assert.equal(qcow2Driver.probe(head, 'p.qcow2'), 100);
    const v4 = head.slice();
    v4[7] = 4;
    assert.equal(qcow2Driver.probe(v4, 'p.qcow2'), 100);
    const v1 = head.slice();
    v1[7] = 1;
    assert.equal(qcow2Driver.probe(v1, 'p.qcow2'), 0);
    assert.equal(qcow2Driver.probe(new Uint8Array(4), 'p.qcow2'), 0);
  });

  it('clears unknown autoclear bits on a read/write open', async () => {
    const store = new MemoryStore('a.qcow2');
    await createOn(store, 'a.qcow2', 65536);
    const b = store.bytes();
    b[95] = 0x80; // an unknown autoclear bit
    const s2 = new MemoryStore('a.qcow2', b);
    const dev = await BlockDevice.open(s2, { format: 'qcow2', readOnly: false });
    await dev.close();
    assert.equal(s2.bytes()[95], 0);
  });

  it('refuses virtual sizes above 2^53 with EUNSUPPORTED', async () => {
    const store = new MemoryStore('h.qcow2');
    await createOn(store, 'h.qcow2', 65536);
    const b = store.bytes();
    new DataView(b.buffer).setBigUint64(24, 2n ** 60n);
    await assert.rejects(BlockDevice.open(new MemoryStore('h.qcow2', b), { format: 'qcow2' }), (e: unknown) => e instanceof VdiskError && e.code === 'EUNSUPPORTED' && /2\^53/.test(e.message));
  });
});
