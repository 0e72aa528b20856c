/**
 * Interrupted bitmap actions: SIGKILL and power loss at seeded writes and
 * syncs of `vdisk bitmap` (add, remove, clear, merge, enable/disable) leave
 * an image qemu-img check finds free of corruption, with its guest content
 * unchanged and every bitmap as before or as after the action (name, flags,
 * granularity and dirty ranges read through qemu-nbd), or marked in-use,
 * which is how qemu itself leaves a bitmap it could not store. Rewriting
 * the directory in place clears the bitmaps' autoclear bit meanwhile, as
 * qemu does (update_ext_header_and_dir_in_place): stopped then, every
 * bitmap is inconsistent for qemu too, and that state passes as well.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { bounded, contentHash, infoOf, make, runKillScenario, type KillScenario } from '../helpers/kill-run.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';
import { dirtyRanges } from '../sweep/nbd-bitmap.js';

const dir = tmpDir('vdisk-kill-bitmap-');
after(() => dir.cleanup());

type Bitmap = { name: string; flags: string[]; granularity: number };
type State = { content: string; bitmaps: Record<string, string>; inconsistent: boolean };

async function observe(d: string): Promise<State> {
  const info = infoOf(d, 'x.qcow2') as { 'format-specific'?: { data?: { bitmaps?: Bitmap[] } } };
  const inconsistent = qemuImg(['info', '-U', 'x.qcow2'], { cwd: d }).stderr.includes('a program lacking bitmap support modified this file');
  const bitmaps: Record<string, string> = {};
  for (const b of info['format-specific']?.data?.bitmaps ?? []) {
    const inUse = b.flags.includes('in-use');
    bitmaps[b.name] = inUse ? 'in-use' : `${b.flags.join('+')} g=${b.granularity} dirty=${(await dirtyRanges(d, 'x.qcow2', 'qcow2', b.name)).replaceAll('\n', ',')}`;
  }
  return { content: contentHash(d, 'x.qcow2'), bitmaps, inconsistent };
}

function verify(state: State, before: State, done: State, what: string): void {
  assert.equal(state.content, before.content, `${what}: guest content changed`);
  if (state.inconsistent) return;
  const settled = (s: State, drop: string[]): string => JSON.stringify(Object.entries(s.bitmaps).filter(([n]) => !drop.includes(n)).sort());
  const inUse = Object.keys(state.bitmaps).filter((n) => state.bitmaps[n] === 'in-use');
  const got = settled(state, inUse);
  assert.ok(got === settled(before, inUse) || got === settled(done, inUse), `${what}: bitmaps neither as before nor as after\n${got}\n${settled(before, inUse)}\n${settled(done, inUse)}`);
}

function scenario(opts: string, flags: string[], target: string): KillScenario<State> {
  return {
    name: `bitmap ${flags.join(' ')} ${target} (${opts})`,
    setup: (d) =>
      make(d, [
        ['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', opts, 'x.qcow2', '4M'],
        ['qemu-img', 'bitmap', '--add', 'x.qcow2', 'b1'],
        ['qemu-img', 'bitmap', '--add', '-g', '128k', 'x.qcow2', 'b2'],
        ['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x11 0 64k', '-c', 'write -P 0x22 1000000 3000', 'x.qcow2'],
        ['qemu-img', 'bitmap', '--disable', 'x.qcow2', 'b2'],
        ['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x33 3M 256k', 'x.qcow2'],
      ]),
    args: ['bitmap', ...flags, 'x.qcow2', target],
    check: ['x.qcow2'],
    observe,
    verify,
  };
}

const SCENARIOS = ['cluster_size=64k', 'cluster_size=512'].flatMap((o) => [
  scenario(o, ['--add'], 'new'),
  scenario(o, ['--add', '-g', '512', '--disable'], 'new'),
  scenario(o, ['--remove'], 'b1'),
  scenario(o, ['--clear'], 'b1'),
  scenario(o, ['--merge', 'b2'], 'b1'),
  scenario(o, ['--disable', '--enable'], 'b2'),
]);

describe('bitmap actions interrupted at seeded writes and syncs', () => {
  bounded(SCENARIOS, (n) => n.endsWith('(cluster_size=64k)') && /--add new|--remove|--merge/.test(n)).forEach((s) => {
    it(s.name, async (t) => {
      if (!requireQemu(t)) return;
      await runKillScenario(dir.path, s, 600 + SCENARIOS.indexOf(s));
    });
  });
});
