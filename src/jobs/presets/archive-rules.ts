/**
 * Rule builders for the tar-wrapped presets (OVA, GCE): the archive's
 * format, its entries and their order.
 */
import type { TarFormat } from '../../core/tar.js';
import type { ArchiveFacts, Rule, RuleOutcome } from './types.js';

function archiveRule(id: string, source: string, judge: (a: ArchiveFacts) => RuleOutcome): Rule {
  return { id, source, check: (f) => (f.archive ? judge(f.archive) : { ok: false, message: 'The file is not a tar archive' }) };
}

/** The entries' headers are in one of `formats`. */
export function tarFormatIn(id: string, source: string, formats: readonly TarFormat[], label: string): Rule {
  return archiveRule(id, source, (a) => ({ ok: (formats as readonly string[]).includes(a.format), message: `${label}; the archive's headers are ${a.format}` }));
}

/** The first entry's name matches `pattern`. */
export function firstEntry(id: string, source: string, pattern: RegExp, label: string): Rule {
  return archiveRule(id, source, (a) => {
    const first = a.entries[0]?.name;
    return { ok: first !== undefined && pattern.test(first), message: `${label}; the first entry is ${first === undefined ? 'missing' : `'${first}'`}` };
  });
}

/** The archive holds exactly the entries named. */
export function onlyEntries(id: string, source: string, names: readonly string[], label: string): Rule {
  return archiveRule(id, source, (a) => {
    const found = a.entries.map((e) => e.name);
    const ok = found.length === names.length && names.every((n, i) => found[i] === n);
    return { ok, message: `${label}; the archive holds ${found.length === 0 ? 'nothing' : found.map((n) => `'${n}'`).join(', ')}` };
  });
}

/** Every disk entry (not .ovf/.mf/.cert) is named by the OVF descriptor's References. */
export function ovfReferencesDisks(id: string, source: string): Rule {
  return archiveRule(id, source, (a) => {
    if (a.ovf === undefined) return { ok: false, message: 'The archive has no OVF descriptor' };
    const hrefs = [...a.ovf.matchAll(/ovf:href="([^"]*)"/g)].map((m) => m[1]);
    const disks = a.entries.map((e) => e.name).filter((n) => !/\.(ovf|mf|cert)$/i.test(n));
    const missing = disks.filter((n) => !hrefs.includes(n));
    const absent = hrefs.filter((h) => !disks.includes(h!));
    const ok = disks.length > 0 && missing.length === 0 && absent.length === 0;
    const why = [missing.length ? `not referenced: ${missing.join(', ')}` : '', absent.length ? `referenced but absent: ${absent.join(', ')}` : ''].filter(Boolean).join('; ');
    return { ok, message: `The OVF descriptor references every file of the package${ok ? '' : `: ${why || 'no disk found'}`}` };
  });
}

/** A manifest, when present, lists every other file with a SHA-256 or SHA-1 digest. */
export function manifestListsFiles(id: string, source: string): Rule {
  return archiveRule(id, source, (a) => {
    if (a.manifest === undefined) return { ok: true, message: 'The package has no manifest (optional)' };
    const listed = new Set([...a.manifest.matchAll(/^SHA(?:256|1)\(([^)]*)\)= ?[0-9a-fA-F]+$/gm)].map((m) => m[1]));
    const files = a.entries.map((e) => e.name).filter((n) => !/\.(mf|cert)$/i.test(n));
    const missing = files.filter((n) => !listed.has(n));
    return { ok: missing.length === 0, message: missing.length === 0 ? 'The manifest lists every file' : `The manifest does not list ${missing.join(', ')}` };
  });
}
