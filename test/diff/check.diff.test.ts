/**
 * `vdisk check` against `qemu-img check`: clean qemu-made images (internal
 * snapshots, persistent bitmaps, compressed clusters, extended L2, refcount
 * widths 1 and 64), images damaged by test/helpers/qcow2-damage.ts (same
 * exit code, same JSON and same detail lines; after `-r all`, no more
 * damage than qemu-img's own repair and undamaged data unchanged), and the
 * other formats' answers.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { DAMAGES, damageQcow2 } from '../helpers/qcow2-damage.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

function same(file: string, args: readonly string[] = []): void {
  const q = qemuImg(['check', ...args, file], { cwd });
  const v = vdisk(['check', ...args, file], { cwd });
  assert.equal(v.status, q.status, `exit of check ${args.join(' ')} ${file}\n${v.stderr}`);
  assert.equal(v.stdout, q.stdout, `stdout of check ${args.join(' ')} ${file}`);
  assert.equal(v.stderr, asVdisk(q.stderr), `stderr of check ${args.join(' ')} ${file}`);
}

function qcow2(name: string, opts: string, snapshots: boolean): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', opts, name, '64M'], { cwd });
  const f = join(cwd, name);
  qemuIo(f, ['write -P 1 0 192k', 'write -c -P 2 1M 64k', 'write -c -P 3 1088k 64k']);
  if (snapshots) qemuImgOk(['snapshot', '-c', 'snap1', name], { cwd });
  qemuIo(f, ['write -P 5 64k 64k', 'discard 0 64k', 'write -z 2M 128k']);
  if (snapshots) qemuImgOk(['snapshot', '-c', 'snap2', name], { cwd });
  qemuImgOk(['bitmap', '--add', name, 'bm1'], { cwd });
  qemuImgOk(['bitmap', '--add', '-g', '128k', name, 'bm2'], { cwd });
  qemuIo(f, ['write -P 7 8M 64k']);
}

describe('check against qemu-img', () => {
  it('qemu-made images check clean and repairs free nothing they use', (t) => {
    if (!requireQemu(t)) return;
    const cases: [string, string, boolean][] = [
      ['c-default.qcow2', 'cluster_size=65536', true],
      ['c-extl2.qcow2', 'extended_l2=on', true],
      ['c-rc64.qcow2', 'refcount_bits=64', true],
      ['c-rc1.qcow2', 'refcount_bits=1', false],
      ['c-4k.qcow2', 'cluster_size=4096,lazy_refcounts=on', true],
    ];
    for (const [name, opts, snaps] of cases) {
      qcow2(name, opts, snaps);
      same(name);
      same(name, ['--output=json']);
      const before = readFileSync(join(cwd, name));
      for (const mode of ['leaks', 'all']) {
        const r = vdisk(['check', '-r', mode, name], { cwd });
        assert.equal(r.status, 0, `${name} -r ${mode}: ${r.stdout}${r.stderr}`);
        assert.ok(readFileSync(join(cwd, name)).equals(before), `${name}: -r ${mode} changed a clean image`);
      }
    }
  });

  for (const damage of DAMAGES) {
    it(`damage '${damage}': same findings as qemu-img, repair at least as good`, (t) => {
      if (!requireQemu(t)) return;
      const base = `d-${damage}.qcow2`;
      qemuImgOk(['create', '-q', '-f', 'qcow2', base, '64M'], { cwd });
      qemuIo(join(cwd, base), ['write -P 1 0 64k', 'write -P 2 64k 64k', 'write -P 3 1M 64k', 'write -c -P 4 4M 64k']);
      damageQcow2(join(cwd, base), damage);
      same(base, ['--output=json']);
      same(base);
      copyFileSync(join(cwd, base), join(cwd, `q-${base}`));
      copyFileSync(join(cwd, base), join(cwd, `v-${base}`));
      const q = qemuImg(['check', '-r', 'all', `q-${base}`], { cwd });
      const v = vdisk(['check', '-r', 'all', `v-${base}`], { cwd });
      assert.equal(v.status, q.status, `-r all exit\n${v.stdout}${v.stderr}`);
      assert.equal(v.stdout, q.stdout, '-r all output');
      const after = (f: string): Record<string, number> => JSON.parse(qemuImg(['check', '--output=json', f], { cwd }).stdout) as Record<string, number>;
      const qa = after(`q-${base}`);
      const va = after(`v-${base}`);
      assert.ok((va['corruptions'] ?? 0) <= (qa['corruptions'] ?? 0), `corruptions after repair ${JSON.stringify(va)}`);
      assert.ok((va['leaks'] ?? 0) <= (qa['leaks'] ?? 0), `leaks after repair ${JSON.stringify(va)}`);
      // undamaged clusters read back unchanged
      if (damage !== 'l1-beyond-eof') qemuIo(join(cwd, `v-${base}`), ['read -P 3 1M 64k', 'read -P 4 4M 64k']);
    });
  }

  // A flipped high bit in a reftable entry: qemu-img grows the file to hold
  // the refblock (sparse) when it can, so vdisk must stay as fast on a grown
  // file as on the original, and must refuse (as ext4 does, with qemu's
  // words) to grow past the 2^31 clusters a check accepts.
  for (const [entry, grows] of [
    [0x0000800000010000n, false],
    [0x00000f0000010000n, true],
  ] as const) {
    it(`refblock offset 0x${entry.toString(16)}: -r all ${grows ? 'grows the file as qemu-img does' : 'grows nothing'}, and ends`, (t) => {
      if (!requireQemu(t)) return;
      const base = `hi-${entry.toString(16)}.qcow2`;
      qemuImgOk(['create', '-q', '-f', 'qcow2', base, '64M'], { cwd });
      qemuIo(join(cwd, base), ['write -P 1 0 1M']);
      const fd = openSync(join(cwd, base), 'r+');
      const hdr = Buffer.alloc(8);
      readSync(fd, hdr, 0, 8, 48);
      const e = Buffer.alloc(8);
      e.writeBigUInt64BE(entry);
      writeSync(fd, e, 0, 8, Number(hdr.readBigUInt64BE(0)));
      closeSync(fd);
      const size0 = statSync(join(cwd, base)).size;
      copyFileSync(join(cwd, base), join(cwd, `q-${base}`));
      copyFileSync(join(cwd, base), join(cwd, `v-${base}`));
      // A hang guard only: how fast the repair runs is for the benchmarks, not for a loaded CI machine.
      const v = vdisk(['check', '-r', 'all', `v-${base}`], { cwd, timeoutMs: 120_000 });
      assert.notEqual(v.status, null, `check -r all did not finish: ${v.stderr}`);
      const q = qemuImg(['check', '-r', 'all', `q-${base}`], { cwd });
      const vSize = statSync(join(cwd, `v-${base}`)).size;
      const qSize = statSync(join(cwd, `q-${base}`)).size;
      if (grows) assert.equal(vSize, qSize, 'grown like qemu-img');
      else assert.ok(vSize <= size0 + 4 * 65536, `grew from ${size0} to ${vSize}`);
      // Where the file system lets qemu-img grow the file past 2^31 clusters (tmpfs, xfs), it leaves an image it cannot check; vdisk stops where ext4 does.
      if (grows || qSize === vSize) {
        assert.equal(v.status, q.status, `-r all exit\n${v.stdout}${v.stderr}`);
        assert.equal(v.stdout, q.stdout, '-r all stdout');
        assert.equal(v.stderr, asVdisk(q.stderr), '-r all stderr');
      }
      assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
      assert.equal(qemuImg(['check', `v-${base}`], { cwd }).status, 0, 'clean after the repair');
      qemuIo(join(cwd, `v-${base}`), ['read -P 1 0 1M']);
      for (const f of [base, `q-${base}`, `v-${base}`]) rmSync(join(cwd, f));
    });
  }

  it('other formats: vdi, vmdk, vhdx check; raw and vpc have no check; -r without repair support is exit 63', (t) => {
    if (!requireQemu(t)) return;
    for (const fmt of ['vdi', 'vmdk', 'vhdx', 'vpc']) {
      const f = `o.${fmt}`;
      qemuImgOk(['create', '-q', '-f', fmt, f, '8M'], { cwd });
      qemuIo(join(cwd, f), ['write -P 9 0 64k'], fmt);
      for (const args of [[], ['--output=json'], ['-r', 'leaks'], ['-r', 'all']]) same(f, args);
    }
    qemuImgOk(['create', '-q', '-f', 'raw', 'o.raw', '1M'], { cwd });
    same('o.raw', ['-f', 'raw']);
  });

  it('bad options as qemu-img words them', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'opt.qcow2', '1M'], { cwd });
    same('opt.qcow2', ['-r', 'bogus']);
    same('opt.qcow2', ['-r', 'all', '-U']);
    same('opt.qcow2', ['-q']);
    same('missing.qcow2');
  });
});
