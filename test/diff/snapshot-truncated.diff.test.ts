/**
 * A qcow2 file cut off inside its internal snapshot table: qemu's file
 * driver reads the missing bytes as zeros, so the image still opens, `info`
 * and `snapshot -l` list the damaged entries, `check` reports them as
 * incomplete and `check -r all` rewrites the table. vdisk must answer every
 * one of those commands byte for byte as qemu-img does, and leave a repaired
 * image that both tools then judge alike.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;

/** Same exit code, stdout and stderr for `args` run in `qdir` by qemu-img and in `vdir` by vdisk. */
function same(args: readonly string[], qdir = cwd, vdir = qdir): void {
  const q = qemuImg(args, { cwd: qdir });
  const v = vdisk(args, { cwd: vdir });
  const what = args.join(' ');
  assert.equal(v.status, q.status, `exit of ${what}\n${v.stderr}`);
  assert.equal(v.stdout, q.stdout, `stdout of ${what}`);
  assert.equal(v.stderr, asVdisk(q.stderr), `stderr of ${what}`);
}

/** A qcow2 image (compat `compat`) with one snapshot, then more data; returns the snapshot table offset. */
function imageWithSnapshot(name: string, compat: string): number {
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `compat=${compat}`, name, '64M'], { cwd });
  qemuIo(join(cwd, name), ['write 0 1M']);
  qemuImgOk(['snapshot', '-c', 's1', name], { cwd });
  qemuIo(join(cwd, name), ['write -P 7 2M 1M']);
  const header = readFileSync(join(cwd, name)).subarray(0, 72);
  const v = new DataView(header.buffer, header.byteOffset, header.length);
  assert.equal(v.getUint32(60), 1, 'one snapshot');
  return Number(v.getBigUint64(64));
}

describe('qcow2 truncated inside its snapshot table, against qemu-img', () => {
  // Cut points relative to the table: at its start (a whole zero entry just
  // past the end), inside the fixed header (id/name lengths survive, their
  // bytes read as NULs), inside the extra data, and inside id and name.
  const cuts = [0, 8, 16, 40, 50, 66, 70];
  for (const compat of ['1.1', '0.10']) {
    it(`compat=${compat}: info, check, snapshot -l and check -r all agree`, (t) => {
      if (!requireQemu(t)) return;
      const base = `base-${compat}.qcow2`;
      const table = imageWithSnapshot(base, compat);
      for (const cut of cuts) {
        const name = `cut-${compat}-${cut}.qcow2`;
        copyFileSync(join(cwd, base), join(cwd, name));
        truncateSync(join(cwd, name), table + cut);
        same(['info', name]);
        same(['check', name]);
        same(['check', '--output=json', name]);
        same(['snapshot', '-l', name]);
        // Repairs run on copies of the same name in two directories, so file names in the output match.
        const qdir = join(cwd, `q-${compat}-${cut}`);
        const vdir = join(cwd, `v-${compat}-${cut}`);
        mkdirSync(qdir);
        mkdirSync(vdir);
        copyFileSync(join(cwd, name), join(qdir, name));
        copyFileSync(join(cwd, name), join(vdir, name));
        same(['check', '-r', 'all', name], qdir, vdir);
        // The repaired images: each tool's verdict on each repair is the same.
        same(['check', name], qdir, vdir);
        same(['snapshot', '-l', name], qdir, vdir);
        const cross = (d: string): string => qemuImg(['check', '--output=json', name], { cwd: d }).stdout;
        assert.equal(cross(vdir), cross(qdir), `qemu-img's view of the two repairs (cut ${cut})`);
      }
    });
  }
});
