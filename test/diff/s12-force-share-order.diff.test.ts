/**
 * `force-share` on a writable image given by `--image-opts`, refused where
 * qemu refuses it: after the driver and a `file=` reference are resolved,
 * before the file is opened (a missing file does not matter), and not on a
 * node of its own `read-only=on` (that one is "Block node is read-only").
 * vdisk refused `-U` before it resolved the options and after it opened
 * the file. `rebase -U` no longer puts force-share on the image it changes
 * (img_rebase opens it without; `-U` is for the backing files).
 */
import { after, describe, it } from 'node:test';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s12-force-share-');
after(() => dir.cleanup());
const cwd = dir.path;

const q = (opts: string): string[] => ['--image-opts', opts];
const CASES: readonly (readonly string[])[] = [
  ['snapshot', '-U', ...q('t.qcow2')],
  ['snapshot', '-U', ...q('driver=qcow2,file.filename=t.qcow2')],
  ['snapshot', '-U', ...q('driver=qcow2,file.filename=nope.qcow2')],
  ['snapshot', ...q('driver=qcow2,file.filename=nope.qcow2,read-only=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=nope.qcow2,force-share=on')],
  ['snapshot', ...q('driver=qcow2,file=nope,force-share=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,bogus=1,force-share=on')],
  ['snapshot', ...q('driver=bogus,file.filename=t.qcow2,force-share=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,file.force-share=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,force-share=on,read-only=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,file.force-share=on,file.read-only=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,force-share=on,file.read-only=on')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,force-share=bogus')],
  ['snapshot', ...q('driver=qcow2,file.filename=t.qcow2,force-share=off')],
  ['snapshot', ...q('driver=file,filename=t.qcow2,force-share=on')],
  ['snapshot', ...q('driver=file,filename=t.qcow2,force-share=on,read-only=on')],
  ['snapshot', ...q('driver=file,filename=nope,force-share=on')],
  ['snapshot', '-l', '-U', ...q('driver=qcow2,file.filename=t.qcow2')],
  ['commit', ...q('driver=qcow2,file.filename=t.qcow2,force-share=on')],
  ['info', '-U', ...q('driver=qcow2,file.filename=t.qcow2,force-share=on')],
  ['rebase', '-U', '-u', '-b', 'b.qcow2', '-F', 'qcow2', ...q('driver=qcow2,file.filename=t.qcow2')],
  ['rebase', '-U', '-u', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'],
];

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'b.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 't.qcow2'], { cwd });
}

describe('force-share on a writable image, refused where qemu-img refuses it', () => {
  it('every case prints and exits as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(CASES, { cwd, fresh });
  });
});
