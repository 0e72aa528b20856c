/**
 * `convert --bitmaps` (qemu-img's convert_check_bitmaps and
 * convert_copy_bitmaps): the persistent bitmaps of the top source layer,
 * copied with their granularity, enabled state and dirty bits into the
 * target after the data, so the copy itself marks nothing.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import type { BlockDevice } from '../block/device.js';
import type { VdiskWarning } from '../core/job.js';

/**
 * Checks the sources before anything is created: one source, able to hold
 * bitmaps, and (unless `skipBroken`) no inconsistent bitmap.
 *
 * @throws {InvalidArgumentError} EINVAL with qemu-img's messages
 */
export function checkSourceBitmaps(sources: readonly BlockDevice[], skipBroken: boolean): void {
  if (sources.length > 1) throw new InvalidArgumentError('Copying bitmaps only possible with single source');
  const bitmaps = sources[0]?.bitmaps;
  if (!bitmaps?.supported) throw new UnsupportedError('Source lacks bitmap support');
  if (skipBroken) return;
  // qemu walks the bitmaps newest-loaded first: the directory in reverse.
  const broken = [...bitmaps.list()].reverse().find((b) => b.inUse);
  if (broken) {
    throw new InvalidArgumentError(`Cannot copy inconsistent bitmap '${broken.name}'`, {
      reason: 'broken-bitmap',
      hint: 'Try skipBrokenBitmaps, or remove the bitmap with bitmap()',
    });
  }
}

/** Checks the opened target can store bitmaps. */
export function checkTargetBitmaps(target: BlockDevice, format: string): void {
  const bitmaps = target.bitmaps;
  if (!bitmaps?.supported || !bitmaps.import) throw new UnsupportedError(`Format driver '${format}' does not support bitmaps`);
}

/** Copies the source's bitmaps into the target (after the data); inconsistent ones are skipped with a warning. */
export async function copyBitmaps(source: BlockDevice, target: BlockDevice, warn: (w: VdiskWarning) => void): Promise<void> {
  const src = source.bitmaps;
  const dst = target.bitmaps;
  if (!src || !dst?.import) return;
  const list = src.list();
  for (const b of [...list].reverse()) if (b.inUse) warn({ code: 'bitmap-skipped', message: `Skipping inconsistent bitmap '${b.name}'` });
  for (const b of list) {
    if (b.inUse) continue;
    await dst.import(b, await src.read(b.name));
  }
}
