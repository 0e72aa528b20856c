/**
 * The shapes shared by the cloud presets: the facts a rule judges (read
 * through the inspect and info jobs, never from the file directly), a
 * rule, and a preset (the convert knobs it sets and the rules it checks).
 */
import type { FoundReference } from '../../block/inspect-open.js';
import type { InspectReason } from '../inspect.js';
import type { ArchiveFacts } from '../../block/archive-open.js';

/** The names of the presets. */
export type PresetName = 'azure' | 'aws' | 'esxi' | 'gce' | 'openstack' | 'kubevirt' | 'ova';

/** What is known of one disk image (the file itself, or the disk inside an archive). */
export interface DiskFacts {
  /** The name it is reported under. */
  readonly filename: string;
  /** The format it opens as: `vpc` for a fixed VHD too (its footer is at the end, where probing does not look). */
  readonly format: string | undefined;
  /** vpc: `fixed` or `dynamic`; vmdk: its create type (`streamOptimized`, …). */
  readonly subformat: string | undefined;
  /** Guest-visible bytes. */
  readonly virtualSize: number | undefined;
  /** Files the image names (backing file, data file, extents). */
  readonly references: readonly FoundReference[];
  /** Why inspect judges it unsafe, other than the references (format confusion, unknown features, a failed open). */
  readonly problems: readonly InspectReason[];
  /** qemu's format-specific block (`info`), when the format has one. */
  readonly formatSpecific: Readonly<Record<string, unknown>> | undefined;
}

export type { ArchiveEntry, ArchiveFacts } from '../../block/archive-open.js';

/** Everything the rules judge. */
export interface ImageFacts {
  /** The image's name. */
  readonly filename: string;
  /** The wrapper the file was inflated from (`gzip`, `zip`), if any. */
  readonly compression: string | undefined;
  /** The tar archive the file is (after inflation), if it is one. */
  readonly archive: ArchiveFacts | undefined;
  /** The disk: the file itself, or the disk entry of the archive (undefined: an archive without one). */
  readonly disk: DiskFacts | undefined;
}

/** A rule's verdict and the reason, for people. */
export interface RuleOutcome {
  /** The rule holds. */
  readonly ok: boolean;
  /** What was found, in words. */
  readonly message: string;
}

/** One acceptance rule of a cloud. */
export interface Rule {
  /** Stable id, `preset.rule` (`azure.fixed`). */
  readonly id: string;
  /** Where the cloud documents it. */
  readonly source: string;
  /** Judges the facts. */
  readonly check: (facts: ImageFacts) => RuleOutcome;
}

/** The wrapper a tar-wrapped preset writes. */
export type ArchiveKind = 'ova' | 'gce';

/** A cloud's preset: the knobs it sets on convert and the rules its output must pass. */
export interface Preset {
  /** Its name (`--preset`). */
  readonly name: PresetName;
  /** The cloud's name in messages (`Azure`). */
  readonly title: string;
  /** Format of the disk written. */
  readonly format: string;
  /** Create options of the disk written (`-o`). */
  readonly options: readonly string[];
  /** The virtual size is rounded up to a multiple of this, when the cloud asks for one (the guest data is unchanged; the rest reads as zeros). */
  readonly sizeUnit?: number | undefined;
  /** Largest virtual size the cloud accepts. */
  readonly maxSize?: number | undefined;
  /** Where `maxSize` is documented. */
  readonly maxSizeSource?: string | undefined;
  /** The archive the disk is written into, for the tar-wrapped presets. */
  readonly archive?: ArchiveKind | undefined;
  /** The acceptance rules, in the order they are reported. */
  readonly rules: readonly Rule[];
}

/** One rule's verdict in a {@link ValidateResult}. */
export interface RuleResult {
  /** The rule's id (`azure.fixed`, …). */
  readonly id: string;
  /** The rule holds. */
  readonly ok: boolean;
  /** What was found, in words. */
  readonly message: string;
  /** Where the cloud documents the rule. */
  readonly source: string;
}

/** What `validate` finds: whether the cloud would accept the image, rule by rule. */
export interface ValidateResult {
  /** The preset judged by. */
  readonly preset: PresetName;
  /** The image judged. */
  readonly filename: string;
  /** Every rule holds. */
  readonly accepted: boolean;
  /** Each rule's outcome. */
  readonly rules: readonly RuleResult[];
}
