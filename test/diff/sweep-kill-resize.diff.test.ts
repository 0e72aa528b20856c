/**
 * Interrupted resize: SIGKILL and power loss at seeded writes and syncs of
 * `vdisk resize` (grow, shrink, preallocated growth, growth that moves the
 * L1 table) leave an image qemu-img check finds free of corruption, whose
 * size and guest content are those from before or from after the resize.
 * A shrink discards the clusters past the new end before it writes the new
 * size, as qemu does: interrupted in between, the image keeps its old size
 * with some of those clusters already reading as zeros.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { assertClusterwise, bounded, infoOf, make, rawContent, runKillScenario, type KillScenario } from '../helpers/kill-run.js';
import { requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-kill-resize-');
after(() => dir.cleanup());

const DATA = ['-c', 'write -P 0x11 0 64k', '-c', 'write -P 0x22 1000000 3000', '-c', 'write -P 0x33 3M 512k', '-c', 'write -z 3584k 64k'];

type State = { size: number; data: Buffer };

function qcow2(opts: string, resize: string[]): KillScenario<State> {
  const cluster = opts.includes('cluster_size=4k') ? 4096 : opts.includes('cluster_size=512') ? 512 : 65536;
  return {
    name: `resize ${opts} ${resize.join(' ')}`,
    setup: (d) => make(d, [['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', opts, 'x.qcow2', '4M'], ['qemu-io', '-f', 'qcow2', ...DATA, 'x.qcow2']]),
    args: ['resize', '-f', 'qcow2', ...resize.slice(0, -1), 'x.qcow2', resize.at(-1)!],
    check: ['x.qcow2'],
    observe: (d) => ({ size: infoOf(d, 'x.qcow2')['virtual-size'], data: rawContent(d, 'x.qcow2') }),
    verify: (state, before, done, what) => {
      assert.ok(state.size === before.size || state.size === done.size, `${what}: size ${state.size}`);
      if (state.size === done.size) assert.ok(state.data.equals(done.data), `${what}: new size, content not as after`);
      else if (!resize.includes('--shrink')) assert.ok(state.data.equals(before.data), `${what}: old size, content not as before`);
      else assertClusterwise(state.data, before.data, done.data, cluster, what);
    },
  };
}

const SCENARIOS = [
  qcow2('cluster_size=64k', ['+12M']),
  qcow2('cluster_size=64k', ['--shrink', '1M']),
  qcow2('cluster_size=64k', ['--preallocation=metadata', '+8M']),
  qcow2('cluster_size=4k', ['--preallocation=full', '+2M']),
  // 512-byte clusters: one L1 cluster maps 2 MiB, so growing to 16 MiB moves the L1 table
  qcow2('cluster_size=512', ['16M']),
  qcow2('cluster_size=4k,refcount_bits=1', ['--shrink', '2M']),
];

describe('resize interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => /\+12M|--shrink 1M|cluster_size=512 /.test(n)).forEach((s) => {
    it(s.name, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 100 + SCENARIOS.indexOf(s));
    });
  });
});
