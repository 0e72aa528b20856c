/**
 * Persistent bitmaps against qemu-img: the same `bitmap` action sequences
 * run by both tools give the same `info` bitmaps and clean `check`s; writes
 * through vdisk mark the bits qemu marks (read back from both images);
 * `convert --bitmaps` copies them as qemu-img does, and the errors match.
 */
import assert from 'node:assert/strict';
import { copyFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

function infoBitmaps(file: string): unknown {
  const info = JSON.parse(qemuImgOk(['info', '--output=json', file], { cwd })) as { 'format-specific': { data: { bitmaps?: unknown } } };
  return info['format-specific'].data.bitmaps;
}

function checkClean(file: string): void {
  const r = qemuImg(['check', file], { cwd });
  assert.equal(r.status, 0, `${file}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /No errors were found/);
}

/** Every bitmap's name, flags and set bits, as vdisk reads them. */
async function dump(file: string): Promise<string[]> {
  const dev = await BlockDevice.open(join(cwd, file), { format: 'qcow2' });
  try {
    const bm = dev.top.image.bitmaps!;
    const out: string[] = [];
    for (const b of bm.list()) {
      const bits = await bm.read(b.name);
      const set: number[] = [];
      bits.forEach((v, i) => {
        for (let k = 0; k < 8; k++) if (v & (1 << k)) set.push(i * 8 + k);
      });
      out.push(`${b.name} g=${b.granularity} on=${b.enabled} inuse=${b.inUse} bits=${set.join(',')}`);
    }
    return out;
  } finally {
    await dev.close();
  }
}

/** Sets the in_use flag of the first directory entry (a crash while open read/write). */
function markFirstInUse(file: string): void {
  const fd = openSync(join(cwd, file), 'r+');
  try {
    const head = Buffer.alloc(4096);
    readSync(fd, head, 0, 4096, 0);
    let p = head.readUInt32BE(100);
    for (;;) {
      const type = head.readUInt32BE(p);
      const len = head.readUInt32BE(p + 4);
      if (type === 0x23852875) break;
      if (type === 0) throw new Error('no bitmaps extension');
      p += 8 + Math.ceil(len / 8) * 8;
    }
    const dirOff = Number(head.readBigUInt64BE(p + 8 + 16));
    const flags = Buffer.alloc(4);
    readSync(fd, flags, 0, 4, dirOff + 12);
    flags.writeUInt32BE(flags.readUInt32BE(0) | 1);
    writeSync(fd, flags, 0, 4, dirOff + 12);
  } finally {
    closeSync(fd);
  }
}

const SEQUENCES: string[][][] = [
  [['--add', 'b0'], ['--add', '-g', '128k', 'b1'], ['--disable', 'b1'], ['--add', 'b2'], ['--remove', 'b2']],
  [['--add', '-g', '512', 'x'], ['--add', 'y'], ['--clear', 'x'], ['--disable', 'y'], ['--enable', 'y'], ['--merge', 'y', 'x']],
  [['--add', '--disable', 'one'], ['--add', 'two'], ['--remove', '--add', 'one'], ['--remove', 'two'], ['--remove', 'one']],
];

describe('bitmap equals qemu-img bitmap', () => {
  for (const [i, seq] of SEQUENCES.entries()) {
    for (const cs of i === 0 ? ['512', '2M'] : ['64k']) {
      it(`sequence ${i} (cluster_size=${cs})`, (t) => {
        if (!requireQemu(t)) return;
        for (const f of [`q${i}-${cs}.qcow2`, `v${i}-${cs}.qcow2`]) qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cs}`, f, '100M'], { cwd });
        for (const step of seq) {
          const name = step.at(-1) as string;
          const flags = step.slice(0, -1);
          const q = qemuImg(['bitmap', ...flags, `q${i}-${cs}.qcow2`, name], { cwd });
          const v = vdisk(['bitmap', ...flags, `v${i}-${cs}.qcow2`, name], { cwd });
          assert.equal(v.status, q.status, `${step.join(' ')}: ${v.stderr}`);
        }
        assert.deepEqual(infoBitmaps(`v${i}-${cs}.qcow2`), infoBitmaps(`q${i}-${cs}.qcow2`));
        checkClean(`v${i}-${cs}.qcow2`);
      });
    }
  }

  it('error messages and exit codes', (t) => {
    if (!requireQemu(t)) return;
    for (const f of ['qe.qcow2', 've.qcow2']) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', f, '100M'], { cwd });
      qemuImgOk(['bitmap', '--add', f, 'b0'], { cwd });
    }
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.qcow2', '1M'], { cwd });
    const cases = [
      ['--add', 'F', 'b0'],
      ['--remove', 'F', 'nope'],
      ['--clear', 'F', 'nope'],
      ['--enable', 'F', 'nope'],
      ['--merge', 'x', 'F', 'b0'],
      ['--add', '-g', '100', 'F', 'b1'],
      ['--add', '-g', '4G', 'F', 'b1'],
      ['F', 'b1'],
      ['-g', '64k', '--remove', 'F', 'b1'],
      ['-F', 'raw', '--remove', 'F', 'b1'],
      ['-b', 'x', '--remove', 'F', 'b1'],
      ['--remove', 'F'],
      ['--add', 'F', ''],
      ['--foo', 'F', 'b'],
      ['--add', '-g', '1x', 'F', 'b'],
    ];
    for (const c of cases) {
      const q = qemuImg(['bitmap', ...c.map((a) => (a === 'F' ? 'qe.qcow2' : a))], { cwd });
      const v = vdisk(['bitmap', ...c.map((a) => (a === 'F' ? 've.qcow2' : a))], { cwd });
      assert.equal(v.status, q.status, c.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), c.join(' '));
    }
    const v2 = vdisk(['bitmap', '--add', 'v2.qcow2', 'b'], { cwd });
    assert.equal(v2.stderr, "vdisk: Operation add on bitmap b failed: Can't make bitmap 'b' persistent in 'v2.qcow2': Cannot store dirty bitmaps in qcow2 v2 files\n");
    assert.deepEqual(infoBitmaps('ve.qcow2'), infoBitmaps('qe.qcow2'));
    checkClean('ve.qcow2');
  });

  it('writes mark enabled bitmaps as qemu marks them', async (t) => {
    if (!requireQemu(t)) return;
    for (const f of ['qw.qcow2', 'vw.qcow2']) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', f, '100M'], { cwd });
      qemuImgOk(['bitmap', '--add', f, 'b0'], { cwd });
      qemuImgOk(['bitmap', '--add', '-g', '512', f, 'fine'], { cwd });
      qemuImgOk(['bitmap', '--add', '--disable', f, 'off'], { cwd });
    }
    qemuIo(join(cwd, 'qw.qcow2'), ['write -P 1 1000 70000', 'write -z 10M 1M', 'discard 50M 64k', 'write -P 2 99M 5000'], 'qcow2');
    const dev = await BlockDevice.open(join(cwd, 'vw.qcow2'), { format: 'qcow2', readOnly: false });
    await dev.write(1000, new Uint8Array(70000).fill(1));
    await dev.writeZeroes(10 * 2 ** 20, 2 ** 20);
    await dev.discard(50 * 2 ** 20, 65536);
    await dev.write(99 * 2 ** 20, new Uint8Array(5000).fill(2));
    await dev.close();
    assert.deepEqual(await dump('vw.qcow2'), await dump('qw.qcow2'));
    assert.deepEqual(infoBitmaps('vw.qcow2'), infoBitmaps('qw.qcow2'));
    checkClean('vw.qcow2');
    assert.equal(qemuImg(['compare', 'vw.qcow2', 'qw.qcow2'], { cwd }).status, 0);
    // qemu-img's own round trip of vdisk's bitmaps keeps the bits.
    qemuImgOk(['convert', '--bitmaps', '-O', 'qcow2', 'vw.qcow2', 'vw-copy.qcow2'], { cwd });
    assert.deepEqual(await dump('vw-copy.qcow2'), await dump('qw.qcow2'));
  });

  it('an open for writing marks the bitmaps in use until close', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'open.qcow2', '10M'], { cwd });
    qemuImgOk(['bitmap', '--add', 'open.qcow2', 'b0'], { cwd });
    const dev = await BlockDevice.open(join(cwd, 'open.qcow2'), { format: 'qcow2', readOnly: false });
    await dev.write(0, new Uint8Array(512).fill(3));
    const during = JSON.parse(qemuImgOk(['info', '-U', '--output=json', 'open.qcow2'], { cwd })) as { 'format-specific': { data: { bitmaps: { flags: string[] }[] } } };
    assert.deepEqual(during['format-specific'].data.bitmaps[0]?.flags, ['in-use', 'auto']);
    await dev.close();
    assert.deepEqual(infoBitmaps('open.qcow2'), [{ flags: ['auto'], name: 'b0', granularity: 65536 }]);
    checkClean('open.qcow2');
  });

  it('convert --bitmaps copies what qemu-img copies; errors and skips match', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'cs.qcow2', '20M'], { cwd });
    qemuImgOk(['bitmap', '--add', 'cs.qcow2', 'b0'], { cwd });
    qemuIo(join(cwd, 'cs.qcow2'), ['write -P 1 1M 300k'], 'qcow2');
    qemuImgOk(['bitmap', '--add', '-g', '1k', 'cs.qcow2', 'b1'], { cwd });
    qemuImgOk(['bitmap', '--add', '--disable', 'cs.qcow2', 'b2'], { cwd });
    qemuIo(join(cwd, 'cs.qcow2'), ['write -P 2 5M 3k'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd });
    copyFileSync(join(cwd, 'cs.qcow2'), join(cwd, 'inuse.qcow2'));
    markFirstInUse('inuse.qcow2');
    assert.equal(vdisk(['convert', '--bitmaps', '-O', 'qcow2', 'cs.qcow2', 'vc.qcow2'], { cwd }).status, 0);
    qemuImgOk(['convert', '--bitmaps', '-O', 'qcow2', 'cs.qcow2', 'qc.qcow2'], { cwd });
    assert.deepEqual(infoBitmaps('vc.qcow2'), infoBitmaps('qc.qcow2'));
    assert.deepEqual(await dump('vc.qcow2'), await dump('qc.qcow2'));
    checkClean('vc.qcow2');
    const cases = [
      ['--bitmaps', '-O', 'raw', 'cs.qcow2', 'T.raw'],
      ['--bitmaps', '-O', 'qcow2', 'r.raw', 'T.qcow2'],
      ['--bitmaps', '-O', 'qcow2', 'cs.qcow2', 'cs.qcow2', 'T.qcow2'],
      ['--bitmaps', '-O', 'qcow2', '-o', 'compat=0.10', 'cs.qcow2', 'T.qcow2'],
      ['--bitmaps', '-O', 'qcow2', 'inuse.qcow2', 'T.qcow2'],
      ['--bitmaps', '--skip-broken-bitmaps', '-O', 'qcow2', 'inuse.qcow2', 'T.qcow2'],
      ['--skip-broken-bitmaps', '-O', 'qcow2', 'inuse.qcow2', 'T.qcow2'],
    ];
    for (const [k, c] of cases.entries()) {
      const q = qemuImg(['convert', ...c.map((a) => a.replace('T.', `q${k}.`))], { cwd });
      const v = vdisk(['convert', ...c.map((a) => a.replace('T.', `v${k}.`))], { cwd });
      assert.equal(v.status, q.status, c.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr).replace("'qemu-img bitmap --remove'", "'vdisk bitmap --remove'"), c.join(' '));
    }
    assert.deepEqual(infoBitmaps('v5.qcow2'), infoBitmaps('q5.qcow2'));
  });
});
