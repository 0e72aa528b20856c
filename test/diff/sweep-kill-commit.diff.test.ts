/**
 * Interrupted commit: SIGKILL and power loss at seeded writes and syncs of
 * `vdisk commit` (into the direct backing file, into a deeper one with -b,
 * with -d, into a raw file) leave every image free of corruption for
 * qemu-img check; the overlay still reads as before, and the image
 * committed into holds, cluster by cluster, its old or its new data.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { assertClusterwise, bounded, contentHash, make, rawContent, runKillScenario, type KillScenario } from '../helpers/kill-run.js';
import { requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-kill-commit-');
after(() => dir.cleanup());

const io = (file: string, ...cmds: string[]): string[] => ['qemu-io', '-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), file];

type State = { top: string; into: Buffer };

/** base.{qcow2|raw} ← mid.qcow2 ← top.qcow2, each with its own data (overlapping). */
function chain(d: string, cluster: string, rawBase: boolean): void {
  const base = rawBase ? 'base.raw' : 'base.qcow2';
  make(d, [
    ['qemu-img', 'create', '-q', '-f', rawBase ? 'raw' : 'qcow2', ...(rawBase ? [] : ['-o', `cluster_size=${cluster}`]), base, '4M'],
    ['qemu-io', '-f', rawBase ? 'raw' : 'qcow2', '-c', 'write -P 0xa1 0 1M', '-c', 'write -P 0xa2 2M 1M', base],
    ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, '-b', base, '-F', rawBase ? 'raw' : 'qcow2', 'mid.qcow2'],
    io('mid.qcow2', 'write -P 0xb1 512k 1M', 'write -z 2304k 256k'),
    ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'],
    io('top.qcow2', 'write -P 0xc1 1M 64k', 'write -P 0xc2 3000000 5000', 'write -z 0 64k', 'discard 2M 64k'),
  ]);
}

function scenario(label: string, args: string[], into: string, cluster = '64k', rawBase = false): KillScenario<State> {
  const files = ['top.qcow2', 'mid.qcow2', ...(rawBase ? [] : ['base.qcow2'])];
  const intoFormat = into.endsWith('.raw') ? 'raw' : 'qcow2';
  return {
    name: `commit ${label}`,
    setup: (d) => chain(d, cluster, rawBase),
    args: ['commit', ...args, 'top.qcow2'],
    check: files,
    observe: (d) => ({ top: contentHash(d, 'top.qcow2'), into: rawContent(d, into, intoFormat) }),
    verify: (state, before, done, what) => {
      assert.equal(state.top, before.top, `${what}: the overlay no longer reads as before`);
      assertClusterwise(state.into, before.into, done.into, cluster === '4k' ? 4096 : 65536, what);
    },
  };
}

const SCENARIOS = [
  scenario('into mid', [], 'mid.qcow2'),
  scenario('-d into mid', ['-d'], 'mid.qcow2'),
  scenario('-b base.qcow2', ['-b', 'base.qcow2'], 'base.qcow2'),
  scenario('into mid, 4k clusters', [], 'mid.qcow2', '4k'),
  scenario('-b base.raw (raw base)', ['-b', 'base.raw'], 'base.raw', '64k', true),
];

describe('commit interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => n === 'commit into mid' || n === 'commit -b base.qcow2').forEach((s) => {
    it(s.name, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 400 + SCENARIOS.indexOf(s));
    });
  });
});
