/** vmdk: images vdisk writes are what qemu-img and libyal's pyvmdk expect; streamOptimized is append-only. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../../src/block/device.js';
import { VdiskError } from '../../../src/core/errors.js';
import { convert } from '../../../src/jobs/convert.js';
import type { ByteStore } from '../../../src/formats/driver.js';
import { vmdkDriver } from '../../../src/formats/vmdk/index.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { vdisk } from '../../helpers/cli.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../../helpers/qemu.js';
import { hasPyvmdk, mixedRaw, pattern, pyvmdkDigest, sha256 } from './build.js';

const dir = tmpDir('vdisk-vmdkw-');
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);
const SIZE = 3 * 1024 * 1024 + 1536;
const SRC = mixedRaw(SIZE);
writeFileSync(p('src.raw'), SRC);

const noExternal = { open: () => Promise.reject(new Error('no external files in this test')) };

function checkPyvmdk(t: { diagnostic(m: string): void }, path: string, expected: Uint8Array): void {
  if (!hasPyvmdk) {
    t.diagnostic('pyvmdk (python3-libvmdk) not importable: libyal cross-check skipped');
    return;
  }
  assert.equal(pyvmdkDigest(path), `${expected.length} ${sha256(expected)}`);
}

describe('vmdk: writing', () => {
  for (const [sub, compress] of [
    ['monolithicSparse', false],
    ['monolithicFlat', false],
    ['twoGbMaxExtentSparse', false],
    ['twoGbMaxExtentFlat', false],
    ['streamOptimized', false],
    ['streamOptimized', true],
  ] as const) {
    it(`vdisk convert -O vmdk -o subformat=${sub}${compress ? ' -c' : ''} gives an image qemu-img finds equal and clean`, (t) => {
      if (!requireQemu(t)) return;
      const name = `w-${sub}${compress ? '-c' : ''}.vmdk`;
      const r = vdisk(['convert', ...(compress ? ['-c'] : []), '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, 'src.raw', name], { cwd: dir.path });
      assert.equal(r.status, 0, r.stderr);
      assert.match(qemuImgOk(['compare', '-f', 'raw', '-F', 'vmdk', 'src.raw', name], { cwd: dir.path }), /identical/);
      assert.match(qemuImgOk(['check', name], { cwd: dir.path }), /No errors/);
      checkPyvmdk(t, p(name), SRC);
    });
  }

  it('zeroed_grain=on: zero writes become zeroed-grain entries qemu-img reads as zeros', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-f', 'vmdk', '-o', 'zeroed_grain=on', p('zg.vmdk'), '4M']);
    const dev = await BlockDevice.open(p('zg.vmdk'), { readOnly: false });
    await dev.write(0, pattern(256 * 1024, 3));
    await dev.writeZeroes(64 * 1024, 128 * 1024);
    await dev.writeZeroes(1024 * 1024, 64 * 1024);
    await dev.close();
    const expect = new Uint8Array(4 * 1024 * 1024);
    expect.set(pattern(256 * 1024, 3));
    expect.fill(0, 64 * 1024, 192 * 1024);
    writeFileSync(p('zg.raw'), expect);
    assert.match(qemuImgOk(['compare', '-F', 'raw', p('zg.vmdk'), p('zg.raw')]), /identical/);
    assert.match(qemuImgOk(['check', p('zg.vmdk')]), /No errors/);
    const map = qemuImgOk(['map', '--output=json', p('zg.vmdk')]);
    assert.match(map, /"start": 65536, "length": 131072, "depth": 0, "present": true, "zero": true, "data": false/);
  });

  it('copy-on-write into a child keeps the parent data around partial grains; writing the parent invalidates the child', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vmdk', p('src.raw'), p('p.vmdk')]);
    qemuImgOk(['create', '-f', 'vmdk', '-b', 'p.vmdk', '-F', 'vmdk', p('c.vmdk')]);
    const dev = await BlockDevice.open(p('c.vmdk'), { readOnly: false });
    await dev.write(4096 + 100, pattern(5000, 9));
    await dev.close();
    const expect = Buffer.from(SRC);
    expect.set(pattern(5000, 9), 4196);
    writeFileSync(p('c.raw'), expect);
    assert.match(qemuImgOk(['compare', '-F', 'raw', p('c.vmdk'), p('c.raw')]), /identical/);
    // a write to the parent changes its CID, so the child no longer reads through it (as in qemu)
    qemuIo(p('p.vmdk'), ['write -P 0x22 0 512'], 'vmdk');
    const again = await BlockDevice.open(p('c.vmdk'));
    await assert.rejects(again.read(2 * 1024 * 1024, new Uint8Array(512)), (e: unknown) => e instanceof VdiskError && e.code === 'ECORRUPT' && /CID/.test(e.message));
    await again.close();
  });

  it('vdisk create -b makes a child with the parent CID that qemu-img reads through', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['convert', '-f', 'raw', '-O', 'vmdk', p('src.raw'), p('p2.vmdk')]);
    const r = vdisk(['create', '-f', 'vmdk', '-b', 'p2.vmdk', '-F', 'vmdk', 'c2.vmdk'], { cwd: dir.path });
    assert.equal(r.status, 0, r.stderr);
    assert.match(qemuImgOk(['compare', '-f', 'raw', '-F', 'vmdk', 'src.raw', 'c2.vmdk'], { cwd: dir.path }), /identical/);
    const desc = readFileSync(p('c2.vmdk')).subarray(512, 1024).toString('latin1');
    assert.match(desc, /parentFileNameHint="p2.vmdk"\n# Extent description/);
  });

  it('convert (API) to the default subformat (monolithicSparse)', async (t) => {
    if (!requireQemu(t)) return;
    const job = convert(p('src.raw'), p('full.vmdk'), { sourceFormat: 'raw', targetFormat: 'vmdk' });
    await job;
    assert.match(qemuImgOk(['compare', '-F', 'vmdk', p('src.raw'), p('full.vmdk')]), /identical/);
  });
});

/** Records every write offset to a store. */
class Recorder implements ByteStore {
  readonly inner: MemoryStore;
  readonly offsets: number[] = [];
  constructor(inner: MemoryStore) {
    this.inner = inner;
  }
  get name(): string {
    return this.inner.name;
  }
  get readOnly(): boolean {
    return false;
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  read(o: number, into: Uint8Array): Promise<number> {
    return this.inner.read(o, into);
  }
  write(o: number, d: Uint8Array): Promise<void> {
    this.offsets.push(o);
    return this.inner.write(o, d);
  }
  truncate(n: number): Promise<void> {
    this.offsets.push(-n);
    return this.inner.truncate(n);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('vmdk: streamOptimized output is append-only', () => {
  it('never writes below an earlier write once the header is written, and reads back', async () => {
    const mem = new MemoryStore('s.vmdk');
    const size = 40 * 1024 * 1024; // two grain tables
    await vmdkDriver.create?.(mem, { size, options: new Map([['subformat', 'streamOptimized']]), filename: 's.vmdk', external: noExternal });
    const rec = new Recorder(mem);
    const dev = await BlockDevice.open(rec, { format: 'vmdk', readOnly: false });
    const model = new Uint8Array(size);
    for (const gi of [0, 1, 5, 300, 511, 512, 600]) {
      const d = pattern(65536, gi + 1);
      await dev.writeCompressed(gi * 65536, d);
      model.set(d, gi * 65536);
    }
    // plain writes in increasing order are gathered per grain
    await dev.write(601 * 65536 + 100, pattern(70000, 77));
    model.set(pattern(70000, 77), 601 * 65536 + 100);
    await dev.flush();
    await dev.write(610 * 65536, pattern(100, 5));
    model.set(pattern(100, 5), 610 * 65536);
    await dev.close();
    for (let i = 1; i < rec.offsets.length; i++) {
      assert.ok((rec.offsets[i] ?? 0) >= (rec.offsets[i - 1] ?? 0), `write ${i} at ${rec.offsets[i]} went below ${rec.offsets[i - 1]}`);
    }
    assert.ok(rec.offsets.every((o) => o >= 65536), 'nothing rewrote the header area');
    const back = await BlockDevice.open(new MemoryStore('s.vmdk', mem.bytes(), { readOnly: true }), { format: 'vmdk' });
    const buf = new Uint8Array(size);
    await back.read(0, buf);
    await back.close();
    assert.ok(Buffer.from(buf).equals(model));
  });

  it('refuses to rewrite a grain already written (as qemu does)', async () => {
    const mem = new MemoryStore('s2.vmdk');
    await vmdkDriver.create?.(mem, { size: 1 << 20, options: new Map([['subformat', 'streamOptimized']]), filename: 's2.vmdk', external: noExternal });
    const dev = await BlockDevice.open(mem, { format: 'vmdk', readOnly: false });
    await dev.writeCompressed(0, pattern(65536, 1));
    await assert.rejects(dev.write(100, new Uint8Array(10)), /Could not write to allocated cluster for streamOptimized/);
    await dev.close();
  });

  it('qemu-img and pyvmdk read the stream layout', async (t) => {
    if (!requireQemu(t)) return;
    const mem = new MemoryStore('s3.vmdk');
    await vmdkDriver.create?.(mem, { size: SIZE, options: new Map([['subformat', 'streamOptimized']]), filename: 's3.vmdk', external: noExternal });
    const dev = await BlockDevice.open(mem, { format: 'vmdk', readOnly: false });
    for (let off = 0; off < SIZE; off += 65536) await dev.writeCompressed(off, SRC.subarray(off, Math.min(SIZE, off + 65536)));
    await dev.close();
    writeFileSync(p('s3.vmdk'), mem.bytes());
    assert.match(qemuImgOk(['compare', '-F', 'vmdk', p('src.raw'), p('s3.vmdk')]), /identical/);
    assert.match(qemuImgOk(['check', p('s3.vmdk')]), /No errors/);
    checkPyvmdk(t, p('s3.vmdk'), SRC);
  });
});
