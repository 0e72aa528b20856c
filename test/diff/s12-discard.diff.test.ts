/**
 * Space freed on the host, as qemu-img frees it. qemu punches holes where
 * clusters are freed by snapshot operations (`pass-discard-snapshot`, on by
 * default) and where a persistent bitmap's data clusters are freed
 * (always), and writes a bitmap table, a bitmap directory and a snapshot
 * table as their own bytes, not padded to a cluster or to 8 bytes. vdisk
 * used to keep every freed cluster allocated (`snapshot -d` gave no space
 * back) and to write those structures padded, which filled holes and, by
 * changing the file's allocated size, flipped qemu's metadata-preallocation
 * test and with it `map`'s zero flags (a sweep case).
 *
 * Each case runs the same commands with qemu-img on one copy and vdisk on
 * another and compares the files' data ranges (SEEK_DATA/SEEK_HOLE), their
 * lengths, `qemu-img map`, `qemu-img compare` and `qemu-img check`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { FileStore } from '../../src/io/file-store.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s12-discard-');
after(() => dir.cleanup());
const cwd = dir.path;

/** The data ranges of a file (undefined without the native module, which SEEK_DATA needs). */
async function dataRanges(file: string): Promise<string | undefined> {
  const store = await FileStore.open(file, { readOnly: true });
  try {
    const size = await store.size();
    const out: string[] = [];
    for (let pos = 0; pos < size; ) {
      const extents = await store.extents(pos, size - pos);
      if (!extents?.length) return undefined;
      for (const e of extents) if (e.data) out.push(`${e.offset.toString(16)}+${e.length.toString(16)}`);
      const last = extents[extents.length - 1]!;
      pos = last.offset + last.length;
    }
    return out.join(' ');
  } finally {
    await store.close();
  }
}

function io(file: string, ...cmds: string[]): void {
  const r = qemuIo(join(cwd, file), cmds, 'qcow2');
  assert.equal(r.status, 0, r.stderr);
}

interface Case {
  readonly name: string;
  /** Builds `file` with qemu tools. */
  readonly setup: (file: string) => void;
  /** The commands under test; `{}` is the image's name. */
  readonly steps: readonly (readonly string[])[];
  /**
   * Whether the files must be laid out alike. A refcount width change puts
   * the new structures past the end of the file where qemu reuses free
   * clusters (README: deliberate differences); `map` must agree all the same.
   */
  readonly sameLayout?: false;
}

const snapshotted = (file: string): void => {
  qemuImgOk(['create', '-q', '-f', 'qcow2', file, '8M'], { cwd });
  io(file, 'write -P 1 0 4M');
  qemuImgOk(['snapshot', '-c', 's1', file], { cwd });
  io(file, 'write -P 2 0 4M');
};
const twoSnapshots = (file: string): void => {
  qemuImgOk(['create', '-q', '-f', 'qcow2', file, '8M'], { cwd });
  io(file, 'write -P 1 0 4M');
  qemuImgOk(['snapshot', '-c', 's1', file], { cwd });
  qemuImgOk(['snapshot', '-c', 's2', file], { cwd });
  io(file, 'write -P 2 0 2M');
};
const withBitmap = (file: string): void => {
  qemuImgOk(['create', '-q', '-f', 'qcow2', file, '8M'], { cwd });
  io(file, 'write -P 1 0 4M');
  qemuImgOk(['bitmap', '--add', '-g', '512', file, 'bm'], { cwd });
  io(file, 'write -P 2 0 8M');
};
/** The sweep's q-rc64.qcow2: refcount_bits=64 and the standard pattern (partial clusters leave host holes). */
const sweepFixture = (file: string): void => {
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=64', file, '4M'], { cwd });
  io(file, 'write -P 0x11 0 64k', 'write -P 0x22 1000000 3000', 'write -P 0x33 2M 192k', 'write -z 2162688 64k', 'write -P 0x44 3146240 512', 'write -P 0x55 4190208 4096');
};

const CASES: readonly Case[] = [
  { name: 'snapshot -d', setup: snapshotted, steps: [['snapshot', '-d', 's1', '{}']] },
  { name: 'snapshot -a', setup: snapshotted, steps: [['snapshot', '-a', 's1', '{}']] },
  { name: 'snapshot -c (old table freed)', setup: snapshotted, steps: [['snapshot', '-c', 's2', '{}']] },
  { name: 'snapshot -a then -d', setup: snapshotted, steps: [['snapshot', '-a', 's1', '{}'], ['snapshot', '-d', 's1', '{}']] },
  { name: 'pass-discard-snapshot=off', setup: snapshotted, steps: [['snapshot', '-d', 's1', '--image-opts', 'driver=qcow2,file.filename={},pass-discard-snapshot=off']] },
  { name: 'pass-discard-snapshot=on', setup: snapshotted, steps: [['snapshot', '-d', 's1', '--image-opts', 'driver=qcow2,file.filename={},pass-discard-snapshot=on']] },
  { name: 'snapshot -d of one of two', setup: twoSnapshots, steps: [['snapshot', '-d', 's1', '{}']] },
  { name: 'snapshot -d of both', setup: twoSnapshots, steps: [['snapshot', '-d', 's1', '{}'], ['snapshot', '-d', 's2', '{}']] },
  { name: 'bitmap --clear', setup: withBitmap, steps: [['bitmap', '--clear', '{}', 'bm']] },
  { name: 'bitmap --remove', setup: withBitmap, steps: [['bitmap', '--remove', '{}', 'bm']] },
  {
    name: 'bitmap --add',
    setup: (file) => {
      qemuImgOk(['create', '-q', '-f', 'qcow2', file, '8M'], { cwd });
      io(file, 'write -P 1 0 4M');
    },
    steps: [['bitmap', '--add', '{}', 'bm']],
  },
  {
    name: 'the sweep case: bitmap, resize, refcount widths, map',
    setup: sweepFixture,
    steps: [['bitmap', '--add', '{}', 'b1'], ['resize', '{}', '+1000448'], ['amend', '-f', 'qcow2', '-o', 'refcount_bits=8', '{}'], ['amend', '-f', 'qcow2', '-o', 'refcount_bits=16', '{}']],
    sameLayout: false,
  },
];

describe('space freed and written as qemu-img frees and writes it', () => {
  for (const c of CASES) {
    it(c.name, async (t) => {
      if (!requireQemu(t)) return;
      c.setup('base.qcow2');
      copyFileSync(join(cwd, 'base.qcow2'), join(cwd, 'q.qcow2'));
      copyFileSync(join(cwd, 'base.qcow2'), join(cwd, 'v.qcow2'));
      for (const step of c.steps) {
        const r1 = qemuImg(step.map((a) => a.replaceAll('{}', 'q.qcow2')), { cwd });
        assert.equal(r1.status, 0, r1.stderr);
        const r2 = vdisk(step.map((a) => a.replaceAll('{}', 'v.qcow2')), { cwd });
        assert.equal(r2.status, 0, r2.stderr);
      }
      const [q, v] = [join(cwd, 'q.qcow2'), join(cwd, 'v.qcow2')];
      if (c.sameLayout !== false) {
        assert.equal(statSync(v).size, statSync(q).size, 'file length');
        const ranges = await dataRanges(q);
        if (ranges !== undefined) assert.equal(await dataRanges(v), ranges, 'data ranges of the file');
        else assert.equal(statSync(v).blocks, statSync(q).blocks, 'allocated blocks');
      }
      assert.equal(qemuImgOk(['map', '--output=json', 'v.qcow2'], { cwd }), qemuImgOk(['map', '--output=json', 'q.qcow2'], { cwd }));
      assert.equal(qemuImg(['compare', 'q.qcow2', 'v.qcow2'], { cwd }).status, 0);
      const check = qemuImg(['check', 'v.qcow2'], { cwd });
      assert.equal(check.status, 0, check.stdout + check.stderr);
    });
  }
});
