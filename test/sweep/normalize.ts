/**
 * What the sweep does not compare: the tool's name, the case's own
 * directories, dates, host-dependent sizes, progress granularity and
 * bench timings. Everything else in the output must match.
 */

/** Replaces every occurrence of each directory with `<DIR>`. */
function dirs(text: string, caseDirs: readonly string[]): string {
  let out = text;
  for (const d of [...caseDirs].sort((a, b) => b.length - a.length)) out = out.replaceAll(d, '<DIR>');
  return out;
}

/** A step's stdout or stderr, normalised for comparison. */
export function normalizeText(text: string, caseDirs: readonly string[]): string {
  return dirs(text, caseDirs)
    .replaceAll('qemu-img: ', 'vdisk: ')
    .replaceAll("Try 'qemu-img --help'", "Try 'vdisk --help'")
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, '<DATE>')
    .replace(/\b\d{2,4}:\d\d:\d\d\.\d{3}\b/g, '<CLOCK>')
    .replace(/^(disk size: ).*$/gm, '$1<N>')
    .replace(/("actual-size": )\d+/g, '$1<N>')
    // vmdk CIDs are random per write session
    .replace(/("(?:parent-)?cid": )\d+/g, '$1<ID>')
    .replace(/^(\s*(?:parent )?cid: )\d+/gm, '$1<ID>')
    .replace(/("date-n?sec": )\d+/g, '$1<N>')
    .replace(/(Run completed in )[\d.]+( seconds)/g, '$1<T>$2')
    .replace(/^([\d.]+ \w+, \d+ ops; )[\d:.]+ sec \(.*\)$/gm, '$1<rate>')
    .replace(/(?:[ \t]*\(\d+\.\d\d\/100%\)\r?\n?)+/g, (m) => `<progress ${lastProgress(m)}>`);
}

/** Progress output collapses to its last value: granularity differs, the end must not. */
function lastProgress(run: string): string {
  const all = [...run.matchAll(/\((\d+\.\d\d)\/100%\)/g)];
  return all.at(-1)?.[1] ?? '';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Drops host-dependent fields from `qemu-img info --output=json` (one image or a --backing-chain array). */
export function normalizeInfo(value: Json, caseDirs: readonly string[]): Json {
  if (Array.isArray(value)) return value.map((v) => normalizeInfo(v, caseDirs));
  if (value === null || typeof value !== 'object') return typeof value === 'string' ? dirs(value, caseDirs) : value;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) {
    if (k === 'actual-size' || k === 'date-sec' || k === 'date-nsec') continue;
    // vmdk CIDs and LUKS UUIDs are random per image
    if (k === 'cid' || k === 'uuid') out[k] = '<ID>';
    // LUKS PBKDF2 counts are calibrated on the host for iter-time
    else if (k === 'iters' || k === 'master-key-iters') out[k] = '<N>';
    else if (k === 'parent-cid') out[k] = v === 4294967295 ? v : '<ID>';
    else out[k] = normalizeInfo(v, caseDirs);
  }
  return out;
}

/** One `map --output=json` range with the host offset dropped. */
export interface MapRange {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}

/** Parses `map --output=json` and merges neighbours that differ only in host offset. */
export function normalizeMap(text: string): MapRange[] {
  const raw = JSON.parse(text) as (MapRange & { offset?: number })[];
  const out: MapRange[] = [];
  for (const r of raw) {
    const prev = out.at(-1);
    const same = prev && prev.start + prev.length === r.start && prev.depth === r.depth && prev.present === r.present && prev.zero === r.zero && prev.data === r.data;
    if (same) prev.length += r.length;
    else out.push({ start: r.start, length: r.length, depth: r.depth, present: r.present, zero: r.zero, data: r.data });
  }
  return out;
}

/**
 * The map with host-file holes inside data ranges ignored: qemu-img map
 * reports a hole in the image file under an allocated cluster as "zero",
 * so two images that allocate the same clusters but leave different holes
 * in their files differ only in this.
 */
export function withoutHostHoles(ranges: readonly MapRange[]): MapRange[] {
  const out: MapRange[] = [];
  for (const r of ranges.map((x) => (x.data ? { ...x, zero: false } : { ...x }))) {
    const prev = out.at(-1);
    if (prev && prev.depth === r.depth && prev.present === r.present && prev.zero === r.zero && prev.data === r.data) prev.length += r.length;
    else out.push(r);
  }
  return out;
}

/** A map as short text lines, for a readable diff. */
export function mapText(ranges: readonly MapRange[]): string {
  return ranges.map((r) => `${r.start}+${r.length} d${r.depth}${r.present ? ' present' : ''}${r.zero ? ' zero' : ''}${r.data ? ' data' : ''}`).join('\n');
}

/** The first differing line of two texts, as "line N: 'a' vs 'b'" (empty when equal). */
export function firstDifference(a: string, b: string): string {
  if (a === b) return '';
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}: ${JSON.stringify(la[i] ?? '<none>')} vs ${JSON.stringify(lb[i] ?? '<none>')}`;
  }
  return 'differ';
}
