/**
 * `commit` of an overlay larger than its base: qemu 7.2's commit job grows
 * the base as it starts and, where the base's format cannot grow (vpc, vhdx,
 * vdi, vmdk, qcow), fails before copying anything with "Block job failed:
 * Operation not supported". vdisk printed the message of an older qemu
 * ("Top image … is larger than base image …, and resize of base image
 * failed"). Bases that grow (raw, qcow2, qed) with them.
 */
import { describe, it, after } from 'node:test';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-commit-grow-');
after(() => dir.cleanup());
const cwd = dir.path;

const BASES = [
  ['vpc', 'b.vhd'],
  ['vhdx', 'b.vhdx'],
  ['vdi', 'b.vdi'],
  ['vmdk', 'b.vmdk'],
  ['qcow', 'b.qcow'],
  ['raw', 'b.raw'],
  ['qcow2', 'b.qcow2'],
  ['qed', 'b.qed'],
] as const;

function fresh(): void {
  for (const [format, name] of BASES) {
    qemuImgOk(['create', '-q', '-f', format, name, '10M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', name, '-F', format, `t-${format}.q`, '20M'], { cwd });
    if (hasQemuIo) qemuIo(join(cwd, `t-${format}.q`), ['write -P 7 15M 1M'], 'qcow2');
  }
}

describe('commit into a smaller base, as qemu-img', () => {
  it('grows the base or fails the job as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      BASES.map(([format]) => ['commit', `t-${format}.q`]),
      { cwd, fresh, outcome: () => BASES.map(([format, name]) => qemuImg(['info', '-f', format, '--output=json', name], { cwd }).stdout.match(/"virtual-size": \d+/)?.[0]).join('\n') },
    );
  });
});
