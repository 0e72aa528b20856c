/**
 * A resize is not a guest write: shrinking (which drops the clusters past
 * the new end) and growing leave persistent bitmaps' bits alone, as
 * qemu-img's truncate does. Bits read through qemu-nbd, independent of
 * both tools' bitmap code.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { dirtyRanges } from '../sweep/nbd-bitmap.js';

const dir = tmpDir('vdisk-fidelity-bitmap-resize-');
after(() => dir.cleanup());

async function afterSteps(tool: 'qemu' | 'vdisk', steps: readonly (readonly string[])[]): Promise<string> {
  const cwd = join(dir.path, tool);
  mkdirSync(cwd, { recursive: true });
  const img = join(cwd, 'z.qcow2');
  qemuImgOk(['create', '-q', '-f', 'qcow2', img, '4M']);
  qemuIo(img, ['write -P 0x7a 1M 1M', 'write -P 0x7b 3M 1M'], 'qcow2');
  for (const step of steps) {
    const args = step.map((a) => (a === 'IMG' ? img : a));
    const r = tool === 'qemu' ? qemuImg(args) : vdisk(args);
    assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
  }
  return dirtyRanges(cwd, 'z.qcow2', 'qcow2', 'b1');
}

describe('resize leaves persistent bitmaps as qemu-img does', () => {
  for (const [name, steps] of [
    ['shrink by part of a granule, then grow back', [['bitmap', '--add', '-g', '1M', 'IMG', 'b1'], ['resize', '--shrink', 'IMG', '-64k'], ['resize', 'IMG', '+64k']]],
    ['shrink by whole clusters', [['bitmap', '--add', 'IMG', 'b1'], ['resize', '--shrink', 'IMG', '-1M']]],
  ] as const) {
    it(name, async (t) => {
      if (!requireQemu(t)) return;
      assert.equal(await afterSteps('vdisk', steps), await afterSteps('qemu', steps));
    });
  }
});
