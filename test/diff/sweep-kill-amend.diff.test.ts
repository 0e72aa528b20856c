/**
 * Interrupted amend: SIGKILL and power loss at seeded writes and syncs of
 * `vdisk amend` (compat down- and upgrade, refcount width changes, lazy
 * refcounts, size) leave an image qemu-img check finds free of corruption,
 * with the options and guest content of before or of after the amend.
 */
import { after, describe, it } from 'node:test';

import { bounded, make, qcow2State, runKillScenario, type KillScenario, type Qcow2State } from '../helpers/kill-run.js';
import { requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-kill-amend-');
after(() => dir.cleanup());

const DATA = ['-c', 'write -P 0x11 0 64k', '-c', 'write -P 0x22 1000000 3000', '-c', 'write -P 0x33 2M 1M', '-c', 'write -z 2176k 128k', '-c', 'write -z 3M 64k'];

function scenario(create: string, amend: string, snapshot = false): KillScenario<Qcow2State> {
  return {
    name: `amend ${create} -o ${amend}${snapshot ? ' (with a snapshot)' : ''}`,
    setup: (d) =>
      make(d, [
        ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', create, 'x.qcow2', '4M'],
        ['qemu-io', '-f', 'qcow2', ...DATA, 'x.qcow2'],
        ...(snapshot ? [['qemu-img', 'snapshot', '-c', 'snap', 'x.qcow2'], ['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x44 0 128k', 'x.qcow2']] : []),
      ]),
    args: ['amend', '-f', 'qcow2', '-o', amend, 'x.qcow2'],
    check: ['x.qcow2'],
    observe: (d) => qcow2State(d, 'x.qcow2'),
  };
}

/**
 * Scenarios with a known bug: the test stays, marked todo, until it is fixed.
 * Downgrading expands preallocated zero clusters shared with a snapshot and
 * sets OFLAG_COPIED on them (refcount 2) in the active and the snapshot's
 * L2 table, even uninterrupted; qemu-img 7.2 writes the same corrupt image.
 */
const TODO: Record<string, string> = {
  'amend compat=1.1 -o compat=0.10 (with a snapshot)':
    'vdisk bug (qemu-img 7.2 has it too): compat=0.10 sets OFLAG_COPIED on expanded zero clusters shared with a snapshot; check finds OFLAG_COPIED errors',
};

const SCENARIOS = [
  scenario('compat=1.1', 'compat=0.10'),
  scenario('compat=1.1', 'compat=0.10', true),
  scenario('compat=0.10', 'compat=1.1', true),
  scenario('compat=1.1', 'refcount_bits=1'),
  scenario('compat=1.1,cluster_size=4k', 'refcount_bits=64', true),
  scenario('compat=1.1', 'lazy_refcounts=on'),
  scenario('compat=1.1,lazy_refcounts=on', 'lazy_refcounts=off'),
  scenario('compat=1.1', 'size=8M'),
];

describe('amend interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => /^amend compat=1.1 -o compat=0.10$|compat=0.10 -o compat=1.1|refcount_bits=1$|size=8M/.test(n)).forEach((s) => {
    it(s.name, TODO[s.name] ? { todo: TODO[s.name] } : {}, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 200 + SCENARIOS.indexOf(s));
    });
  });
});
