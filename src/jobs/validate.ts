/**
 * validate: whether a cloud would accept an existing image, rule by rule,
 * each rule citing where the cloud documents it. Reads the image through
 * inspect and info only (nothing it names is opened).
 */
import { Job, type JobOptions } from '../core/job.js';
import type { IngestPolicy } from '../block/ingest-policy.js';
import { gatherFacts } from './presets/facts.js';
import { presetByName } from './presets/index.js';
import type { ImageFacts, Preset, PresetName, ValidateResult } from './presets/types.js';

/** Phases of {@link validate} (it reports none: it reads headers only). */
export type ValidatePhase = never;

/** Options of {@link validate}. */
export interface ValidateOptions extends JobOptions<ValidatePhase> {
  /** Inflation limits and temporary directory for a gzip'd file (GCE tarballs). */
  policy?: IngestPolicy | undefined;
}

/** Judges gathered facts by every rule of `preset`. */
export function judge(preset: Preset, facts: ImageFacts): ValidateResult {
  const rules = preset.rules.map((r) => ({ id: r.id, ...r.check(facts), source: r.source }));
  return { preset: preset.name, filename: facts.filename, accepted: rules.every((r) => r.ok), rules };
}

/**
 * Judges `image` (a path, or a store the caller keeps) by the rules of the
 * cloud `preset`. The result is data, never an exception, for an image a
 * cloud would refuse; a file that cannot be read at all fails the job.
 *
 * @example
 * ```ts
 * const r = await validate('disk.vhd', 'azure');
 * if (!r.accepted) console.log(r.rules.filter((x) => !x.ok).map((x) => `${x.id}: ${x.message}`));
 * ```
 * @throws {InvalidArgumentError} EINVAL for an unknown preset
 * @throws {NotFoundError} ENOENT (and the other errors of opening the file)
 */
export function validate(image: Parameters<typeof gatherFacts>[0], preset: PresetName | string, options: ValidateOptions = {}): Job<ValidateResult, ValidatePhase> {
  return new Job(async (ctx) => {
    const p = presetByName(preset);
    return judge(p, await gatherFacts(image, { policy: options.policy, signal: ctx.signal }));
  }, options);
}

export type { PresetName, ValidateResult, RuleResult } from './presets/types.js';
