/**
 * Differences from qemu-img 7.2 the sweep does not fail on, in two lists:
 *
 * - DELIBERATE: vdisk differs on purpose. Each `why` is what the README's
 *   "Deliberate differences from qemu-img" list says.
 * - KNOWN_OPEN: differences not fixed yet, each with the issue that tracks
 *   it. They are reported separately, so they stay visible, and the sample
 *   test fails on anything new.
 *
 * Keep each entry narrow: it must match the difference it names and
 * nothing else (the command, the kind of difference, the texts).
 */
import { mapText, normalizeMap, withoutHostHoles } from './normalize.js';
import type { Difference } from './types.js';

/**
 * Two runs of `map --output=json` (as a step records them: `exit N`, `--- stdout`, then `--- stderr` if
 * any) that exit alike and differ only in host offsets and in host holes under data.
 */
function sameWithoutHostHoles(a: string, b: string): boolean {
  const parts = (run: string): { exit: string; stdout: string; stderr: string } => {
    const [exit = '', rest = ''] = run.split('\n--- stdout\n');
    const [stdout = '', stderr = ''] = rest.split('\n--- stderr\n');
    return { exit, stdout, stderr };
  };
  const [p, q] = [parts(a), parts(b)];
  if (p.exit !== q.exit || p.stderr !== q.stderr) return false;
  try {
    return mapText(withoutHostHoles(normalizeMap(p.stdout))) === mapText(withoutHostHoles(normalizeMap(q.stdout)));
  } catch {
    return false;
  }
}

export interface Accepted {
  readonly id: string;
  readonly why: string;
  /** For KNOWN_OPEN entries: the issue that will remove it. */
  readonly issue?: number;
  match(d: Difference): boolean;
}

const isGlobal = (d: Difference): boolean => d.caseId.startsWith('global: ');
const isText = (d: Difference): boolean => d.kind === 'stdout' || d.kind === 'stderr';
/** The case runs `word` as a vdisk/qemu-img command at some step. */
const runs = (d: Difference, word: string): boolean => new RegExp(`(^|: |; )${word} `).test(d.caseId);
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Sizes JavaScript numbers cannot hold exactly (2^53 and above), as the sweep writes them. */
const HUGE_SIZE = /\b(9223372036854775807|9007199254740993|1[0-9]{16,}|[0-9]{17,})\b/;

/** A message with its numbers and program name masked. */
const same = (text: string): string => text.replace(/\d+/g, 'N').replaceAll('qemu-img:', 'vdisk:');

export const DELIBERATE: readonly Accepted[] = [
  {
    id: 'help-text',
    why: "vdisk's --help text is its own (same options, its name, its version, its vdisk-only options), and `vdisk COMMAND --help` prints it where qemu-img 7.2 says 'Not enough arguments'",
    match: (d) => (isText(d) || (d.kind === 'exit' && isGlobal(d))) && (d.argv.includes('--help') || d.argv.includes('-h') || (isGlobal(d) && /--help|-h\b/.test(d.caseId)) || (isGlobal(d) && d.argv.length === 0)),
  },
  {
    id: 'help-after-bad-option',
    why: "measure's help after a bad option (qemu-img 7.2 prints it and exits 0) is vdisk's own help text",
    match: (d) => d.kind === 'stdout' && isGlobal(d) && /^(exit \d+\n--- stdout\n)?qemu-img version/.test(d.qemu) && /^(exit \d+\n--- stdout\n)?vdisk version/.test(d.vdisk),
  },
  {
    id: 'version-text',
    why: "vdisk --version prints vdisk's own version and the qemu-img version it follows",
    match: (d) => d.kind === 'stdout' && (d.argv[0] === '-V' || d.argv[0] === '--version'),
  },
  {
    id: 'refcount-structures-at-end',
    why: 'A refcount width change (amend -o refcount_bits=) writes the new refcount blocks and table after the last cluster in use; qemu-img puts them in the first free clusters: same content and check results, the image ends elsewhere',
    match: (d) =>
      /amend [^;]*refcount_bits=/.test(d.caseId) &&
      (d.kind === 'stdout' || d.kind === 'info') &&
      /^line \d+: "(Image end offset: \d+|\s*"image-end-offset": \d+,)" vs "(Image end offset: \d+|\s*"image-end-offset": \d+,)"$/.test(d.summary),
  },
  {
    id: 'host-holes',
    why: 'Inside a cluster it allocates, vdisk leaves the parts it never writes as holes in the image file (qemu-img writes zeros there, so `qemu-img map` shows "zero": true, "data": true over them): same clusters, same guest content, a smaller file',
    match: (d) =>
      (d.kind === 'allocation' && d.summary.startsWith('map (host holes only)')) ||
      // A map step of a sequence: the same ranges once host holes are ignored (how many of the file's clusters
      // are allocated on the host also decides qemu's metadata-preallocation test, and with it the zero flags).
      (d.kind === 'stdout' && runs(d, 'map') && d.argv.includes('--output=json') && sameWithoutHostHoles(d.qemu, d.vdisk)),
  },
  {
    id: 'zero-copy-as-zero-clusters',
    why: '`commit` and safe `rebase` write zero clusters (or holes in a raw base) where the data they copy is all zeros; qemu-img writes it as allocated data: same content, fewer clusters',
    match: (d) =>
      (d.kind === 'allocation' && (runs(d, 'rebase') || runs(d, 'commit'))) ||
      // A map step after them shows the same (content is compared on its own).
      (d.kind === 'stdout' && runs(d, 'map') && d.argv.includes('--output=json') && /(^|; )(commit|rebase) [^;]*; (.*; )?map /.test(d.caseId)),
  },
  {
    id: 'frees-reused-after-flush',
    why: 'A cluster a write frees (zeroed with unmap, discarded, replaced by copy-on-write) is reused only once the tables that stopped pointing at it are on disk; qemu-img reuses it at once, so a crash in between can show one offset\'s data at another. Same content; later allocations sit at other host offsets (`map` offsets)',
    match: (d) => d.kind === 'stdout' && runs(d, 'map') && d.argv.includes('--output=json') && d.qemu !== d.vdisk && d.qemu.replace(/"offset": \d+/g, '"offset": N') === d.vdisk.replace(/"offset": \d+/g, '"offset": N'),
  },
  {
    id: 'convert-n-keeps-zero-blocks',
    why: '`convert -n` into vmdk, vdi or vpc images leaves blocks that already read as zeros unallocated; qemu-img writes the zeros as data: same content, a smaller file',
    match: (d) => d.kind === 'allocation' && /convert -n .*-O (vmdk|vdi|vpc) /.test(d.caseId),
  },
  {
    id: 'bitmaps-kept-in-place',
    why: "On close, persistent bitmaps that were never read and whose image did not change size keep their clusters (qemu-img rewrites every bitmap, also on snapshot and amend): same header but for the bitmap directory's offset, same bits, same check results, no more clusters in use; only check's image end offset differs (and, after a downgrade to compat=0.10, which leaks the bitmaps' clusters in both tools, which clusters leak)",
    match: (d) =>
      (runs(d, 'bitmap') || /q-bm|q-dfr?\.qcow2|c3-top/.test(d.caseId)) &&
      ((d.kind === 'stdout' && /^line \d+: "(Image end offset: \d+|\s*"image-end-offset": \d+,)" vs "(Image end offset: \d+|\s*"image-end-offset": \d+,)"$/.test(d.summary)) ||
        // A downgrade to compat=0.10 leaks the bitmaps' clusters (both tools): the same leaks, where each put them.
        (/amend [^;]*compat=0\.10/.test(d.caseId) && (d.kind === 'stderr' || d.kind === 'stdout') && /^line \d+: "Leaked cluster \d+ refcount=1 reference=0" vs "Leaked cluster \d+ refcount=1 reference=0"$/.test(d.summary))),
  },
  {
    id: 'repair-keeps-snapshots',
    why: '`check -r all` (or `-r leaks`) on a consistent image with internal snapshots and persistent bitmaps finds nothing and changes nothing; qemu-img 7.2 reports leaks and corruptions there and "repairs" them by dropping the snapshots',
    match: (d) =>
      /check -r (all|leaks)/.test(d.caseId) && /snapshot -c|q-snap/.test(d.caseId) && /bitmap --add|q-bm/.test(d.caseId) &&
      (['stdout', 'stderr', 'info', 'snapshot', 'check', 'allocation'].includes(d.kind) ||
        // A later step on a snapshot qemu-img dropped (seed 5077: `snapshot -d s1` after the repair).
        (d.kind === 'exit' && /^exit 1 vs 0: .*snapshot not found/.test(d.summary))),
  },
  {
    id: 'failed-snapshot-leaks-nothing',
    why: 'A `snapshot -c` that fails because 1-bit refcounts cannot count the shared clusters leaves no leaked cluster; qemu-img leaks the cluster it allocated for the snapshot, which a later `check` reports',
    match: (d) => /q-rc1\.qcow2/.test(d.caseId) && runs(d, 'snapshot -c') && /check/.test(d.caseId) && (d.kind === 'stdout' || d.kind === 'stderr') && /Leaked cluster|inconsistencies were found|leaked clusters/.test(d.qemu),
  },
  {
    id: 'dirty-after-leak-repair',
    why: '`check -r leaks` on a dirty (lazy refcounts) image whose refcounts still have errors keeps the dirty flag; qemu-img clears it, and its next write can overwrite guest data',
    match: (d) =>
      // Other options may come first (seed 6161: `check -q -r leaks -f qcow2`).
      runs(d, 'check (?:-[qU] |-[fT] [^ ;]+ |--output=[^ ;]+ )*-r leaks') &&
      /q-dirty/.test(d.caseId) &&
      (((d.kind === 'info' || d.kind === 'stdout') && /dirty-flag/.test(d.summary)) ||
        // What follows: a qemu-io write opens vdisk's still-dirty image and repairs it (qemu-io's
        // stderr lists the refcount errors), while qemu-img's next writes land on clusters its
        // refcounts call free, so the images' contents part (vdisk's keeps the guest data).
        (d.tool === 'qemu-io' && d.kind === 'stderr' && d.qemu.endsWith('--- stderr\n') && /^ERROR cluster \d+ refcount=0 reference=1$/m.test(d.vdisk) && /Rebuilding refcount structure|Repairing/.test(d.vdisk)) ||
        ((d.kind === 'content' || d.kind === 'snapshot') && (/\[qemu-io [^\]]*"(write|discard)/.test(d.caseId) || runs(d, 'snapshot -c'))) ||
        // A later qemu-img command that opens vdisk's still-dirty image for writing repairs it first, as qemu does
        // (seed 11213: `snapshot -c` after the leak repair); qemu-img's image is clean by then and says nothing.
        (d.tool !== 'qemu-io' && d.kind === 'stderr' && d.qemu.endsWith('--- stderr\n') && /^ERROR cluster \d+ refcount=0 reference=1$/m.test(d.vdisk) && /Rebuilding refcount structure/.test(d.vdisk)) ||
        // A later `check -r all` finds and repairs what qemu-img's writes broke (seed 11213); vdisk's image is clean.
        ((d.kind === 'stdout' || d.kind === 'stderr') && runs(d, 'check (?:-[qU] |-[fT] [^ ;]+ |--output=[^ ;]+ )*-r all') && /\[qemu-io [^\]]*"(write|discard)/.test(d.caseId) && /inconsistencies were found|^ERROR cluster \d+ refcount=\d+ reference=\d+$/m.test(d.qemu) && !/inconsistencies were found|^ERROR/m.test(d.vdisk)) ||
        // ...and a later check finds qemu-img's refcounts broken by those writes, vdisk's clean.
        (d.kind === 'exit' && /\[qemu-io [^\]]*"(write|discard)/.test(d.caseId) && /^exit \d+ vs 0: ERROR cluster \d+ refcount=\d+ reference=\d+/.test(d.summary))),
  },
  {
    id: 'sizes-above-2^53',
    why: 'Sizes of 2^53 bytes (8 PiB) and more are refused when the command line is parsed ("Invalid image size specified"); qemu-img accepts them up to 2^63-1 and then fails (or creates a descriptor no tool can use) in the format',
    match: (d) => HUGE_SIZE.test(d.caseId) && (d.kind === 'exit' || d.kind === 'files' || isText(d)) && (d.kind !== 'stderr' || /Invalid image size specified|larger than vdisk supports|Parameter 'size' expects/.test(d.vdisk)),
  },
  {
    id: 'failed-create-cleans-up',
    why: 'A create or convert that fails removes the files it created; qemu-img can leave an empty file, descriptor or extent behind (a full disk stays full)',
    match: (d) => d.kind === 'files' && /^only qemu: \[[^\]]+\] only vdisk: \[\]$/.test(d.summary) && (runs(d, 'create') || runs(d, 'convert')) && !/\b(luks)\b/.test(d.caseId),
  },
  {
    id: 'node-names',
    why: "Where qemu-img names an internal block node ('#block123', a counter of its own), vdisk names the image file",
    match: (d) => d.kind === 'stderr' && /#block\d+/.test(d.qemu) && new RegExp(`^${d.qemu.split(/#block\d+/).map(escape).join("[^\\s':]+")}$`).test(d.vdisk),
  },
  {
    id: 'hint-newline',
    why: 'vdisk ends every hint with a newline; qemu-img prints "Detected format of X." (create -b without -F) without one',
    match: (d) => d.kind === 'stderr' && d.qemu.replace(/(Detected format of \w+\.)(?!\n)/, '$1\n') === d.vdisk,
  },
  {
    id: 'own-name-in-advice',
    why: "Advice that names the tool says `vdisk` (\"run 'vdisk check -r'\"), not qemu-img",
    match: (d) => isText(d) && d.qemu.replaceAll('qemu-img check', 'vdisk check') === d.vdisk,
  },
  {
    id: 'rebase-compress',
    why: '`rebase -c` (compress the data rebase writes, qemu-img 8.2) is accepted; qemu-img 7.2 does not know the option',
    match: (d) => d.caseId.includes('rebase -c ') && ['exit', 'info', 'stderr', 'stdout', 'allocation', 'check'].includes(d.kind),
  },
  {
    id: 'dd-onto-own-input',
    why: '`dd if=X of=X` keeps the data (the output is written under a temporary name and renamed); qemu-img truncates X and loses it',
    match: (d) => runs(d, 'dd') && /\bif=(\S+) .*\bof=\1\b|\bof=(\S+) .*\bif=\2\b/.test(d.caseId),
  },
  {
    id: 'pbkdf2-measured-count',
    why: 'LUKS PBKDF2 counts are measured on the host for iter-time (node:crypto in vdisk, nettle in qemu-img), so a message that prints the measured count (a negative iter-time) differs in the number only',
    match: (d) => d.kind === 'stderr' && /PBKDF iterations \d+ too large to scale/.test(d.qemu) && same(d.qemu) === same(d.vdisk),
  },
  {
    id: 'empty-fixed-vhd',
    why: 'A fixed VHD of no sectors (the footer alone, 512 bytes, as both tools write it) opens; qemu-img takes its footer at offset 0 for a dynamic disk\'s copy, cannot open it ("Error reading dynamic VHD header"), and so fails a convert into one after writing it (seed 7219)',
    match: (d) => /-O vpc -o subformat=fixed/.test(d.caseId) && /empty/.test(d.caseId) && /Error reading dynamic VHD header/.test(d.qemu) && ['exit', 'stderr'].includes(d.kind),
  },
  {
    id: 'qemu-img-assertion',
    why: "Where qemu-img aborts on one of its own assertions, vdisk completes the command (a twoGbMaxExtentSparse VMDK of size 0, which both tools create without extents, opens as an empty disk: qemu-img's info and convert abort in vmdk_get_info, seed 8123)",
    match: (d) => ['exit', 'stderr', 'stdout'].includes(d.kind) && /Assertion `[^']+' failed/.test(d.qemu) && !/Assertion/.test(d.vdisk),
  },
];

export const KNOWN_OPEN: readonly Accepted[] = [];

/** The entry of either list that explains a difference, if any. */
export function acceptedFor(d: Difference): { entry: Accepted; known: boolean } | undefined {
  const deliberate = DELIBERATE.find((e) => e.match(d));
  if (deliberate) return { entry: deliberate, known: false };
  const known = KNOWN_OPEN.find((e) => e.match(d));
  return known ? { entry: known, known: true } : undefined;
}
