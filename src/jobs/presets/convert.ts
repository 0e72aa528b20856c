/**
 * convert with a preset: the preset sets the format, the create options
 * and the size rounding; the source is checked against the cloud's limits
 * before a byte is written, and the result is judged by the preset's own
 * rules at the end (a failure there is a vdisk bug, reported as an error).
 */
import { InvalidArgumentError, IoError } from '../../core/errors.js';
import type { JobContext } from '../../core/job.js';
import { BlockDevice } from '../../block/device.js';
import { targetName, type ImageTarget } from '../../block/chain.js';
import { prepareTarget } from '../../block/target.js';
import { convert, type ConvertOptions, type ConvertPhase, type ConvertResult } from '../convert.js';
import { archiveOutput, packageName } from './archive.js';
import { gatherFacts } from './facts.js';
import { presetByName } from './index.js';
import { sizeText } from './rules.js';
import type { Preset } from './types.js';
import { judge } from '../validate.js';

/** Options a preset sets itself, by name: giving them too is a conflict. */
const SET_BY_PRESET: readonly [keyof ConvertOptions, string][] = [
  ['targetFormat', 'targetFormat (-O)'],
  ['options', 'options (-o)'],
  ['compress', 'compress (-c)'],
  ['backingFile', 'backingFile (-B)'],
  ['noCreate', 'noCreate (-n)'],
  ['targetIsZero', 'targetIsZero (--target-is-zero)'],
  ['bitmaps', 'bitmaps (--bitmaps)'],
];

/** Refuses options that would change what the preset writes. */
export function checkPresetConflicts(preset: Preset, opts: ConvertOptions): void {
  for (const [key, label] of SET_BY_PRESET) {
    const v = opts[key];
    const same = key === 'targetFormat' && v === preset.format;
    if (v !== undefined && v !== false && !same) throw new InvalidArgumentError(`The ${preset.name} preset sets the target itself: ${label} cannot be given with it`, { data: { preset: preset.name, option: key } });
  }
}

/** The target's virtual size after the preset's rounding, refused past the cloud's limit. */
export function presetSize(preset: Preset, sourceSize: number): number {
  const unit = preset.sizeUnit ?? 1;
  const size = Math.ceil(sourceSize / unit) * unit;
  if (size === 0) throw new InvalidArgumentError(`${preset.title} cannot take an empty disk: the source's virtual size is 0`, { data: { preset: preset.name } });
  if (preset.maxSize !== undefined && size > preset.maxSize) {
    throw new InvalidArgumentError(`${preset.title} accepts at most ${sizeText(preset.maxSize)}: the source's virtual size is ${sizeText(sourceSize)}`, { data: { preset: preset.name, size: sourceSize, max: preset.maxSize } });
  }
  return size;
}

async function sourceSize(sources: readonly ImageTarget[], opts: ConvertOptions): Promise<number> {
  let total = 0;
  for (const s of sources) {
    const dev = await BlockDevice.open(s, { ...opts, format: opts.sourceFormat, readOnly: true });
    total += dev.size;
    await dev.close();
  }
  return total;
}

/** Writes the archive into `target` (a new file under a temporary name, renamed when complete). */
async function writeArchive(source: ImageTarget, target: ImageTarget, preset: Preset, size: number, opts: ConvertOptions, ctx: JobContext<ConvertPhase>): Promise<number> {
  if (typeof target !== 'string') throw new InvalidArgumentError(`The ${preset.name} preset writes a file: give its name`);
  const archive = await archiveOutput(source, preset, packageName(target), size, { ...opts, signal: ctx.signal });
  const output = prepareTarget(target, {});
  try {
    const store = await output.openMain(undefined);
    let at = 0;
    for await (const chunk of archive.stream) {
      await store.write(at, chunk as Uint8Array);
      at += (chunk as Uint8Array).length;
    }
    await store.flush();
    await store.close();
    await output.commit();
    return at;
  } finally {
    await output.abort();
    await archive.cleanup();
  }
}

/** The preset's rules on what was written: any failure is a vdisk bug. */
async function checkOutput(preset: Preset, target: ImageTarget): Promise<void> {
  if (typeof target !== 'string') return;
  const verdict = judge(preset, await gatherFacts(target));
  const failed = verdict.rules.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new IoError(`Internal error: the ${preset.name} image written fails its own rules: ${failed.map((r) => `${r.id}: ${r.message}`).join('; ')}`, { file: targetName(target), data: { rules: failed } });
  }
}

/** Runs convert as the preset named in `opts.preset` sets it. */
export async function runPresetConvert(sources: readonly ImageTarget[], target: ImageTarget, opts: ConvertOptions, ctx: JobContext<ConvertPhase>): Promise<ConvertResult> {
  const preset = presetByName(opts.preset ?? '');
  checkPresetConflicts(preset, opts);
  const total = await sourceSize(sources, opts);
  const size = presetSize(preset, total);
  let result: ConvertResult;
  if (preset.archive) {
    if (sources.length !== 1) throw new InvalidArgumentError(`The ${preset.name} preset takes one source`);
    ctx.progress.phase('copy', total);
    await writeArchive(sources[0]!, target, preset, size, opts, ctx);
    result = { target: targetName(target), format: preset.archive === 'ova' ? 'ova' : 'tar.gz', size, dataBytes: total, zeroBytes: size - total };
  } else {
    const inner = convert([...sources], target, { ...opts, preset: undefined, signal: ctx.signal, targetFormat: preset.format, options: [...preset.options], targetSize: size });
    result = await inner;
  }
  await checkOutput(preset, target);
  ctx.progress.finish();
  return result;
}
