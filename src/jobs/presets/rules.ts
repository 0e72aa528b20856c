/**
 * Rule builders the presets share: each returns a {@link Rule} whose
 * message says what was found, so a rejection explains itself.
 */
import type { DiskFacts, ImageFacts, Rule, RuleOutcome } from './types.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** A size for messages: bytes, and the unit it is a whole number of when it is one. */
export function sizeText(n: number): string {
  for (const [unit, name] of [[TiB, 'TiB'], [GiB, 'GiB'], [MiB, 'MiB']] as const) {
    if (n >= unit && n % unit === 0) return `${n / unit} ${name} (${n} bytes)`;
  }
  return `${n} bytes`;
}

function outcome(ok: boolean, message: string): RuleOutcome {
  return { ok, message };
}

/** A rule on the disk; fails with `missing` when there is no disk to judge. */
function diskRule(id: string, source: string, judge: (d: DiskFacts) => RuleOutcome): Rule {
  return { id, source, check: (f) => (f.disk ? judge(f.disk) : outcome(false, 'No disk image was found to judge')) };
}

/** The disk is one of `formats` (qemu names: vpc, vmdk, qcow2, raw, vhdx). */
export function formatIn(id: string, source: string, formats: readonly string[], label: string): Rule {
  return diskRule(id, source, (d) => outcome(d.format !== undefined && formats.includes(d.format), `${label}; the image is ${d.format ?? 'of no known format'}`));
}

/** The disk's subformat (vpc fixed/dynamic, vmdk create type) is `want`, for disks of `format`. */
export function subformatIs(id: string, source: string, format: string, want: string, label: string): Rule {
  return diskRule(id, source, (d) => {
    if (d.format !== format) return outcome(true, `${label} (not applicable: the image is ${d.format ?? 'of no known format'})`);
    return outcome(d.subformat === want, `${label}; the image is ${d.subformat ?? 'of unknown subformat'}`);
  });
}

/** The disk names no other file: no backing file, data file or external extent. */
export function noReferences(id: string, source: string, label: string): Rule {
  return diskRule(id, source, (d) => {
    const refs = d.references.map((r) => `${r.role} '${r.name}'`);
    return outcome(refs.length === 0, refs.length === 0 ? `${label}; the image names none` : `${label}; the image names ${refs.join(', ')}`);
  });
}

/** The disk reads as one format, with no unknown features, and opens (inspect's other reasons). */
export function opensCleanly(id: string, source: string): Rule {
  return diskRule(id, source, (d) => {
    const why = d.problems.map((p) => `${p.code}: ${p.message}`);
    return outcome(why.length === 0, why.length === 0 ? 'The image opens as one format with no unknown features' : why.join('; '));
  });
}

/** The virtual size is a whole multiple of `unit` (and not zero). */
export function sizeMultiple(id: string, source: string, unit: number, who: string): Rule {
  return diskRule(id, source, (d) => {
    const size = d.virtualSize ?? 0;
    const ok = size > 0 && size % unit === 0;
    return outcome(ok, `${who} needs a virtual size that is a whole number of ${sizeText(unit).replace(/^1 /, '')}; the image has ${sizeText(size)}`);
  });
}

/** The virtual size is at most `max`. */
export function sizeAtMost(id: string, source: string, max: number, who: string): Rule {
  return diskRule(id, source, (d) => {
    const size = d.virtualSize ?? 0;
    return outcome(size <= max, `${who} accepts at most ${sizeText(max)}; the image has ${sizeText(size)}`);
  });
}

/** The file is (or is not) wrapped in one of `allowed` (undefined: a plain file). */
export function wrappedIn(id: string, source: string, allowed: readonly (string | undefined)[], label: string): Rule {
  return { id, source, check: (f: ImageFacts) => outcome(allowed.includes(f.compression), `${label}; the file is ${f.compression === undefined ? 'not compressed' : `${f.compression}-compressed`}`) };
}

/** The file is (not) a tar archive. */
export function isArchive(id: string, source: string, want: boolean, label: string): Rule {
  return { id, source, check: (f) => outcome((f.archive !== undefined) === want, `${label}; the file ${f.archive ? 'is' : 'is not'} a tar archive`) };
}
