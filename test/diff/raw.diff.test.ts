/**
 * raw images against qemu-img: create (every preallocation mode), info
 * (human and JSON), convert (exact copy, sparse output).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());

function pair(args: (name: string) => string[], names: [string, string]): void {
  const ours = vdisk(args(names[0]), { cwd: dir.path });
  const theirs = qemuImg(args(names[1]), { cwd: dir.path });
  assert.equal(ours.status, theirs.status, `exit status: ${ours.stderr}`);
  assert.equal(ours.stdout.replaceAll(names[0], names[1]), theirs.stdout);
}

describe('raw create and info equal qemu-img', () => {
  for (const prealloc of [undefined, 'off', 'falloc', 'full']) {
    it(`create -f raw ${prealloc ? `-o preallocation=${prealloc}` : ''} then info`, (t) => {
      if (!requireQemu(t)) return;
      const o = prealloc ? ['-o', `preallocation=${prealloc}`] : [];
      const size = prealloc === undefined || prealloc === 'off' ? '1G' : '10M';
      pair((n) => ['create', '-f', 'raw', ...o, n, size], ['v.img', 'q.img']);
      for (const args of [['info'], ['info', '--output=json'], ['info', '--backing-chain'], ['info', '--backing-chain', '--output=json']]) {
        const ours = vdisk([...args, 'v.img'], { cwd: dir.path });
        const theirs = qemuImgOk([...args, 'q.img'], { cwd: dir.path });
        assert.equal(ours.status, 0, ours.stderr);
        assert.equal(ours.stdout.replaceAll('v.img', 'q.img'), theirs, args.join(' '));
      }
    });
  }

  it('sizes round up to whole sectors as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    pair((n) => ['create', '-f', 'raw', n, '0x10'], ['v2.img', 'q2.img']);
    assert.equal(statSync(join(dir.path, 'v2.img')).size, statSync(join(dir.path, 'q2.img')).size);
    const theirs = qemuImgOk(['info', '--output=json', 'q2.img'], { cwd: dir.path });
    assert.equal(vdisk(['info', '--output=json', 'v2.img'], { cwd: dir.path }).stdout.replaceAll('v2.img', 'q2.img'), theirs);
  });

  it('prints info for a probed non-sector-sized raw file like qemu-img', (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(join(dir.path, 'odd.bin'), Buffer.alloc(1000, 7));
    assert.equal(vdisk(['info', 'odd.bin'], { cwd: dir.path }).stdout, qemuImgOk(['info', 'odd.bin'], { cwd: dir.path }));
    assert.equal(vdisk(['info', '--output=json', 'odd.bin'], { cwd: dir.path }).stdout, qemuImgOk(['info', '--output=json', 'odd.bin'], { cwd: dir.path }));
  });
});

describe('raw convert equals qemu-img', () => {
  before(() => {
    // 8 MiB: random data, a zero-filled written region, a hole, data at the very end.
    const size = 8 * 1024 * 1024;
    const buf = Buffer.alloc(size);
    let x = 12345;
    for (let i = 0; i < 1024 * 1024; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      buf[i] = x >>> 24;
    }
    buf.fill(0x55, 3 * 1024 * 1024, 3 * 1024 * 1024 + 100);
    buf.fill(0xaa, size - 4096);
    writeFileSync(join(dir.path, 'src.img'), buf);
  });

  it('copies exactly and stays at least as sparse as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['convert', '-f', 'raw', '-O', 'raw', 'src.img', 'v-out.img'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, '');
    qemuImgOk(['convert', '-f', 'raw', '-O', 'raw', 'src.img', 'q-out.img'], { cwd: dir.path });
    assert.ok(readFileSync(join(dir.path, 'v-out.img')).equals(readFileSync(join(dir.path, 'src.img'))));
    const vBlocks = statSync(join(dir.path, 'v-out.img')).blocks;
    const qBlocks = statSync(join(dir.path, 'q-out.img')).blocks;
    assert.ok(vBlocks <= qBlocks, `vdisk allocated ${vBlocks} blocks, qemu-img ${qBlocks}`);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'raw', 'src.img', 'v-out.img'], { cwd: dir.path }).status, 0);
  });

  it('fully allocates with -S 0', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['convert', '-S', '0', '-O', 'raw', 'src.img', 'v-full.img'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.ok(statSync(join(dir.path, 'v-full.img')).blocks * 512 >= 8 * 1024 * 1024);
    assert.ok(readFileSync(join(dir.path, 'v-full.img')).equals(readFileSync(join(dir.path, 'src.img'))));
  });

  it('prints the -p progress line as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['convert', '-p', '-O', 'raw', 'src.img', 'v-p.img'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.match(ours.stdout, /^ {4}\(0\.00\/100%\)\r.* {4}\(100\.00\/100%\)\r\n$/s);
  });

  it('writes into an existing target with -n', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-f', 'raw', 'n.img', '8M'], { cwd: dir.path });
    writeFileSync(join(dir.path, 'n.img'), Buffer.alloc(8 * 1024 * 1024, 0xff));
    const ours = vdisk(['convert', '-n', '-O', 'raw', 'src.img', 'n.img'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.ok(readFileSync(join(dir.path, 'n.img')).equals(readFileSync(join(dir.path, 'src.img'))));
  });
});
