/**
 * `vdisk/cloud`: images a cloud accepts. {@link validate} judges an image
 * by a cloud's documented rules; `convert(src, out, { preset })` in the
 * main entry writes one.
 *
 * @module vdisk/cloud
 */
export { validate, type ValidateOptions, type ValidatePhase, type ValidateResult, type RuleResult, type PresetName } from './jobs/validate.js';
export { PRESETS } from './jobs/presets/index.js';
export type { Preset, Rule, RuleOutcome, ImageFacts, DiskFacts, ArchiveFacts, ArchiveEntry, ArchiveKind } from './jobs/presets/types.js';
export type { TarFormat, TarHeader } from './core/tar.js';
