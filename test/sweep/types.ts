/** The sweep's vocabulary: cases, steps and the differences they find. */

/**
 * One step of a case. `img` steps are the compared ones: qemu-img runs in
 * q/, vdisk in v/, with the same argv. `qemu-img` and `qemu-io` steps are
 * setup run by that qemu tool in both directories (a target for `-n`, guest
 * writes between commands); their results are compared too, since they
 * show how qemu sees what each side made.
 */
export interface Step {
  readonly tool: 'img' | 'qemu-img' | 'qemu-io';
  readonly argv: readonly string[];
}

/** A command sequence run by both tools on identical inputs. */
export interface Case {
  /** Stable, descriptive id (derived from the command lines, not an index). */
  readonly id: string;
  /** The command the case exercises (the first `img` step's), for grouping and sampling. */
  readonly command: string;
  /** Formats involved (inputs and outputs), for sampling coverage. */
  readonly formats: readonly string[];
  /** Fixture names whose files are copied into both directories. */
  readonly inputs: readonly string[];
  readonly steps: readonly Step[];
  /** Formats of files the case knows (others are probed by qemu-img). */
  readonly hints?: Readonly<Record<string, string>>;
  /** Compare only exit status and stderr (bench: timings and host speed). */
  readonly exitOnly?: boolean;
}

/** Classes of difference, most serious first. */
export const DIFF_KINDS = ['content', 'snapshot', 'bitmap', 'check', 'allocation', 'files', 'info', 'exit', 'timeout', 'stdout', 'stderr'] as const;
export type DiffKind = (typeof DIFF_KINDS)[number];

/** One difference between qemu-img's and vdisk's result. */
export interface Difference {
  readonly caseId: string;
  readonly command: string;
  /** Index of the step (-1: the images left after the sequence). */
  readonly step: number;
  readonly argv: readonly string[];
  /** The step's tool when it was a qemu setup step (their results differ only through what vdisk made). */
  readonly tool?: 'qemu-img' | 'qemu-io';
  readonly kind: DiffKind;
  /** The image file the difference is about (final observations). */
  readonly file?: string;
  /** One-line essence of the difference. */
  readonly summary: string;
  readonly qemu: string;
  readonly vdisk: string;
  /** An earlier step of the case already differed (this one may follow from it). */
  readonly cascade: boolean;
  /** Id of the deliberate-difference entry that matched, if any. */
  deliberate?: string;
  /** Id of the known-open entry (not fixed yet, tracked by an issue) that matched, if any. */
  known?: string;
}
