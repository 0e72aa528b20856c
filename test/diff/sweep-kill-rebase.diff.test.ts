/**
 * Interrupted rebase: SIGKILL and power loss at seeded writes and syncs of
 * `vdisk rebase`, safe (onto a deeper image, onto an unrelated one, onto
 * nothing) and unsafe (-u), leave images qemu-img check finds free of
 * corruption. A safe rebase never changes what the image reads, stopped or
 * not; an unsafe one reads through the old or the new backing file, whole.
 */
import { after, describe, it } from 'node:test';

import { bounded, contentHash, infoOf, make, runKillScenario, type KillScenario } from '../helpers/kill-run.js';
import { requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-kill-rebase-');
after(() => dir.cleanup());

const io = (file: string, ...cmds: string[]): string[] => ['qemu-io', '-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), file];
const create = (file: string, opts: string, backing?: string): string[] =>
  ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', opts, ...(backing ? ['-b', backing, '-F', 'qcow2'] : []), file, '4M'];

type State = { content: string; backing: string };

function scenario(label: string, opts: string, args: string[]): KillScenario<State> {
  return {
    name: `rebase ${label} (${opts})`,
    setup: (d) =>
      make(d, [
        create('base.qcow2', opts), io('base.qcow2', 'write -P 0xa1 0 1M', 'write -P 0xa2 2M 1M'),
        create('mid.qcow2', opts, 'base.qcow2'), io('mid.qcow2', 'write -P 0xb1 512k 1M', 'write -z 2304k 256k'),
        create('top.qcow2', opts, 'mid.qcow2'), io('top.qcow2', 'write -P 0xc1 1M 64k', 'write -P 0xc2 3000000 5000'),
        create('other.qcow2', opts), io('other.qcow2', 'write -P 0xd1 256k 2M', 'write -P 0xd2 3M 4k'),
      ]),
    args: ['rebase', ...args, 'top.qcow2'],
    check: ['top.qcow2', 'mid.qcow2', 'base.qcow2', 'other.qcow2'],
    observe: (d) => ({ content: contentHash(d, 'top.qcow2'), backing: String(infoOf(d, 'top.qcow2')['backing-filename'] ?? '') }),
  };
}

const SCENARIOS = ['cluster_size=64k', 'cluster_size=4k', 'cluster_size=64k,extended_l2=on'].flatMap((o) => [
  scenario('onto base', o, ['-b', 'base.qcow2', '-F', 'qcow2']),
  scenario('onto an unrelated image', o, ['-b', 'other.qcow2', '-F', 'qcow2']),
  scenario('onto nothing', o, ['-b', '']),
  scenario('-u onto an unrelated image', o, ['-u', '-b', 'other.qcow2', '-F', 'qcow2']),
]);

describe('rebase interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => n.endsWith('(cluster_size=64k)') && !n.startsWith('rebase onto an unrelated')).forEach((s) => {
    it(s.name, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 500 + SCENARIOS.indexOf(s));
    });
  });
});
