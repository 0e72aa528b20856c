/**
 * Interrupted writes to QED images: SIGKILL and power loss at seeded
 * writes and syncs of `convert -n` into a qed target, `commit` into a qed
 * base, a safe `rebase` of a qed overlay and `resize` leave images
 * qemu-img check finds free of corruption (leaks are what qemu's own
 * crashes leave), whose guest content is, cluster by cluster, that from
 * before or from after the command — the crash-safe order of QED
 * allocation: data, then the L2 table, then the L1 entry.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { assertClusterwise, bounded, infoOf, make, rawContent, runKillScenario, type KillScenario } from '../helpers/kill-run.js';
import { requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qed-kill-');
after(() => dir.cleanup());

const io = (format: string, file: string, ...cmds: string[]): string[] => ['qemu-io', '-f', format, ...cmds.flatMap((c) => ['-c', c]), file];
const CLUSTER = 16384;

type State = { size: number; data: Buffer };

function scenario(name: string, setup: (d: string) => void, args: string[], file: string, check: string[]): KillScenario<State> {
  return {
    name,
    setup,
    args,
    check,
    observe: (d) => ({ size: infoOf(d, file)['virtual-size'], data: rawContent(d, file, 'qed') }),
    verify: (state, before, done, what) => {
      assert.ok(state.size === before.size || state.size === done.size, `${what}: size ${state.size}`);
      assertClusterwise(state.data, before.data, done.data, CLUSTER, what);
    },
  };
}

const SCENARIOS = [
  scenario(
    'convert -n into a qed image',
    (d) =>
      make(d, [
        ['qemu-img', 'create', '-q', '-f', 'raw', 'src.raw', '4M'],
        io('raw', 'src.raw', 'write -P 0x11 0 1M', 'write -P 0x22 2M 700k', 'write -P 0x33 3500k 10k'),
        ['qemu-img', 'create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', 'x.qed', '4M'],
        io('qed', 'x.qed', 'write -P 0x44 512k 100k', 'write -z 3M 64k'),
      ]),
    ['convert', '-n', '-O', 'qed', 'src.raw', 'x.qed'],
    'x.qed',
    ['x.qed'],
  ),
  scenario(
    'commit into a qed base',
    (d) =>
      make(d, [
        ['qemu-img', 'create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', 'base.qed', '4M'],
        io('qed', 'base.qed', 'write -P 0x51 0 1M'),
        ['qemu-img', 'create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', '-b', 'base.qed', '-F', 'qed', 'top.qed'],
        io('qed', 'top.qed', 'write -P 0x52 100k 300k', 'write -P 0x53 2M 1M', 'write -z 512k 64k'),
      ]),
    ['commit', 'top.qed'],
    'base.qed',
    ['base.qed', 'top.qed'],
  ),
  scenario(
    'rebase of a qed overlay onto nothing',
    (d) =>
      make(d, [
        ['qemu-img', 'create', '-q', '-f', 'raw', 'base.raw', '4M'],
        io('raw', 'base.raw', 'write -P 0x61 0 4M'),
        ['qemu-img', 'create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', '-b', 'base.raw', '-F', 'raw', 'top.qed'],
        io('qed', 'top.qed', 'write -P 0x62 100k 3k', 'write -z 1M 64k'),
      ]),
    ['rebase', '-b', '', 'top.qed'],
    'top.qed',
    ['top.qed'],
  ),
  scenario(
    'resize of a qed image',
    (d) => make(d, [['qemu-img', 'create', '-q', '-f', 'qed', '-o', 'cluster_size=16k', 'x.qed', '4M'], io('qed', 'x.qed', 'write -P 0x71 0 64k')]),
    ['resize', 'x.qed', '+4M'],
    'x.qed',
    ['x.qed'],
  ),
];

describe('qed writes interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => /convert|commit/.test(n)).forEach((s) => {
    it(s.name, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 300 + SCENARIOS.indexOf(s));
    });
  });
});
