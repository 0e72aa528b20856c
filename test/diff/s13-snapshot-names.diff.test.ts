/**
 * Snapshot names as qemu keeps them: a new name is cut to 255 bytes (qemu
 * copies it into QEMUSnapshotInfo's 256-byte field; vdisk stored it whole,
 * and refused one over 64 KiB), and names that are not UTF-8 keep their bytes
 * when vdisk rewrites the snapshot table (they became U+FFFD, and qemu-img
 * could no longer find the snapshot). Bitmap names the same way.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';

import { VDISK_BIN, vdisk } from '../helpers/cli.js';
import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-snapshot-names-');
after(() => dir.cleanup());
const cwd = dir.path;

/** The snapshot table as qemu-img lists it, without the creation times. */
function listed(): string {
  return qemuImgOk(['snapshot', '-l', 'q.qcow2'], { cwd }).replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, 'DATE');
}

/** Runs `script` in sh (printf makes the bytes that are not UTF-8). */
function sh(script: string): ReturnType<typeof spawnSync> {
  return spawnSync('sh', ['-c', script], { cwd, encoding: 'latin1' });
}

describe('snapshot names as qemu keeps them', () => {
  it('a new name is cut to 255 bytes', (t) => {
    if (!requireQemu(t)) return;
    const fresh = (): void => void qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
    assertCasesMatchQemu(
      [
        ['snapshot', '-c', 'x'.repeat(255), 'q.qcow2'],
        ['snapshot', '-c', 'x'.repeat(300), 'q.qcow2'],
        ['snapshot', '-c', 'x'.repeat(70000), 'q.qcow2'],
        // 200 two-byte characters: the cut falls inside the 128th.
        ['snapshot', '-c', 'é'.repeat(200), 'q.qcow2'],
      ],
      { cwd, fresh, outcome: listed },
    );
  });

  it('a name that is not UTF-8 keeps its bytes when the table is rewritten', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
    assert.equal(sh("qemu-img snapshot -c \"$(printf 'a\\377b')\" q.qcow2").status, 0);
    qemuImgOk(['snapshot', '-c', 'other', 'q.qcow2'], { cwd });
    assert.equal(vdisk(['snapshot', '-d', 'other', 'q.qcow2'], { cwd }).status, 0);
    const r = sh("qemu-img snapshot -d \"$(printf 'a\\377b')\" q.qcow2");
    assert.equal(r.status, 0, String(r.stderr));
    assert.doesNotMatch(listed(), /\d+\s+\S/, 'both snapshots gone');
    // vdisk lists the name with its own bytes, as qemu-img does.
    assert.equal(sh("qemu-img snapshot -c \"$(printf 'a\\377b')\" q.qcow2").status, 0);
    const theirs = sh('qemu-img snapshot -l q.qcow2').stdout;
    const ours = sh(`'${process.execPath}' '${VDISK_BIN}' snapshot -l q.qcow2`).stdout;
    assert.equal(String(ours).replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'DATE'), String(theirs).replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'DATE'));
  });

  it('a bitmap name that is not UTF-8 keeps its bytes when the directory is rewritten', (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'q.qcow2', '1M'], { cwd });
    assert.equal(sh("qemu-img bitmap --add q.qcow2 \"$(printf 'b\\377')\"").status, 0);
    assert.equal(vdisk(['bitmap', '--add', 'q.qcow2', 'other'], { cwd }).status, 0);
    const r = sh("qemu-img bitmap --remove q.qcow2 \"$(printf 'b\\377')\"");
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(sh(`'${process.execPath}' '${VDISK_BIN}' bitmap --add q.qcow2 "$(printf 'c\\376')"`).status, 0);
    assert.equal(sh("qemu-img bitmap --remove q.qcow2 \"$(printf 'c\\376')\"").status, 0, 'written with its bytes');
    assert.doesNotMatch(qemuImgOk(['info', 'q.qcow2'], { cwd }), /name: [bc]/);
  });
});
