/**
 * `amend -p` draws qemu-img's steps: img_amend prints every status callback
 * of qcow2_amend_options through qemu_progress_print (the upgrade's three,
 * one per old refcount table entry in each of the refcount rewrite's three
 * walks, one per L1 entry of the downgrade's zero expansion, the operations
 * not yet started projected from those seen). vdisk drew 0% and 100% only,
 * and its 100% twice.
 */
import { describe, it, after } from 'node:test';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-amend-progress-');
after(() => dir.cleanup());
const cwd = dir.path;
const IMAGES = ['v3.q', 'v2.q', 'r8.q', 'empty.q', 'c512.q', 'snaps.q', 'v2snap.q'];
const template = join(cwd, 'template');

/** The images every case starts from, made once. */
function makeTemplate(): void {
  mkdirSync(template);
  const cwd = template;
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'v3.q', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2.q', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=8', 'r8.q', '10M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'empty.q', '0'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', 'c512.q', '64M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', 'snaps.q', '20M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', 'v2snap.q', '10M'], { cwd });
  if (hasQemuIo) {
    qemuIo(join(cwd, 'v3.q'), ['write 0 5M'], 'qcow2');
    qemuIo(join(cwd, 'c512.q'), ['write 0 1M'], 'qcow2');
    qemuIo(join(cwd, 'snaps.q'), ['write 0 5M', 'write -z 6M 3M'], 'qcow2');
    qemuIo(join(cwd, 'v2snap.q'), ['write 0 1M'], 'qcow2');
  }
  for (const name of ['a', 'b']) qemuImgOk(['snapshot', '-c', name, 'snaps.q'], { cwd });
  qemuImgOk(['snapshot', '-c', 'a', 'v2snap.q'], { cwd });
}

function fresh(): void {
  for (const name of IMAGES) copyFileSync(join(template, name), join(cwd, name));
}

/** What amend left: the image's check status, compat level and refcount width. */
function outcome(name: string): string {
  const r = qemuImg(['check', name], { cwd });
  const info = qemuImg(['info', '--output=json', name], { cwd });
  const spec = (JSON.parse(info.stdout) as { 'format-specific': { data: { compat: string; 'refcount-bits': number } } })['format-specific'].data;
  return `${name}: ${r.status} ${spec.compat} ${spec['refcount-bits']}`;
}

describe('amend -p, as qemu-img', () => {
  it('draws the upgrade, refcount rewrite and downgrade steps as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    makeTemplate();
    const cases = [
        // Nothing with steps: 0% and 100% once each.
        ['amend', '-p', '-o', 'lazy_refcounts=on', 'v3.q'],
        ['amend', '-p', '-o', 'refcount_bits=16', 'v3.q'],
        ['amend', '-p', '-o', 'size=20M', 'v3.q'],
        // One operation each.
        ['amend', '-p', '-o', 'compat=1.1', 'v2.q'],
        ['amend', '-p', '-o', 'compat=1.1', 'v2snap.q'],
        ['amend', '-p', '-o', 'compat=0.10', 'v3.q'],
        ['amend', '-p', '-o', 'compat=0.10', 'snaps.q'],
        ['amend', '-p', '-o', 'compat=0.10', 'c512.q'],
        ['amend', '-p', '-o', 'compat=0.10', 'empty.q'],
        ['amend', '-p', '-o', 'refcount_bits=1', 'v3.q'],
        ['amend', '-p', '-o', 'refcount_bits=64', 'v3.q'],
        ['amend', '-p', '-o', 'refcount_bits=8', 'c512.q'],
        ['amend', '-p', '-o', 'refcount_bits=2', 'empty.q'],
        // Two operations: the second projected from the first, the line going back.
        ['amend', '-p', '-o', 'compat=1.1,refcount_bits=8', 'v2.q'],
        ['amend', '-p', '-o', 'compat=1.1,lazy_refcounts=on,refcount_bits=4', 'v2.q'],
        ['amend', '-p', '-o', 'compat=0.10,refcount_bits=16', 'r8.q'],
        // A refcount that does not fit: the first walk stops at its table entry.
        ['amend', '-p', '-o', 'refcount_bits=1', 'snaps.q'],
        // -q silences the line.
        ['amend', '-p', '-q', '-o', 'refcount_bits=8', 'v3.q'],
    ];
    for (const c of cases) {
      const image = c[c.length - 1] as string;
      assertCasesMatchQemu([c], { cwd, fresh, stdout: (text) => text.replaceAll('\r', '\\r\n'), outcome: () => outcome(image) });
    }
  });
});
