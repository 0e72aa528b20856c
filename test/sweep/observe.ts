/**
 * Compares the images each tool left behind, all read by qemu-img (the
 * oracle) with -U: the set of file names, `info` (host-dependent fields
 * dropped), `check` (vdisk's at least as clean), `map` without host offsets
 * (allocation), guest content (`compare`), every internal snapshot's content
 * and every persistent bitmap's dirty ranges (through qemu-nbd).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { dirtyRanges } from './nbd-bitmap.js';
import { firstDifference, mapText, normalizeInfo, normalizeMap, normalizeText, withoutHostHoles } from './normalize.js';
import { run } from './proc.js';
import type { DiffKind } from './types.js';

/** A difference found in the final images (the runner adds case and step). */
export interface ImageDiff {
  readonly kind: DiffKind;
  readonly file?: string;
  readonly summary: string;
  readonly qemu: string;
  readonly vdisk: string;
}

export interface ObserveContext {
  readonly qDir: string;
  readonly vDir: string;
  /** Scratch directory for snapshot copies. */
  readonly scratch: string;
  readonly caseDirs: readonly string[];
  readonly hints: Readonly<Record<string, string>>;
  /** Files neither tool changed since the inputs were copied (skipped). */
  readonly unchanged: ReadonlySet<string>;
}

const TIMEOUT = 30_000;
const qimg = (args: string[], cwd: string): ReturnType<typeof run> => run('qemu-img', args, { cwd, timeoutMs: TIMEOUT });

/** Regular files of `dir` with their size and mtime (to skip untouched inputs). */
export function fileStamps(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const st = statSync(join(dir, e.name), { bigint: true });
    out.set(e.name, `${st.size}:${st.mtimeNs}`);
  }
  return out;
}

type Info = { format?: string; 'virtual-size'?: number; 'backing-filename'?: string; encrypted?: boolean; snapshots?: { id: string; name: string }[]; 'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } } };

/** Everything that differs between q/ and v/ after a case. */
export async function compareImages(ctx: ObserveContext): Promise<ImageDiff[]> {
  const q = [...fileStamps(ctx.qDir).keys()].sort();
  const v = [...fileStamps(ctx.vDir).keys()].sort();
  const diffs: ImageDiff[] = [];
  if (q.join('\n') !== v.join('\n')) {
    const onlyQ = q.filter((n) => !v.includes(n));
    const onlyV = v.filter((n) => !q.includes(n));
    diffs.push({ kind: 'files', summary: `only qemu: [${onlyQ.join(', ')}] only vdisk: [${onlyV.join(', ')}]`, qemu: q.join('\n'), vdisk: v.join('\n') });
  }
  for (const name of q.filter((n) => v.includes(n) && !ctx.unchanged.has(n))) diffs.push(...(await compareFile(ctx, name)));
  return diffs;
}

async function formatOf(ctx: ObserveContext, name: string): Promise<string | undefined> {
  const hinted = ctx.hints[name];
  if (hinted) return hinted;
  const r = await qimg(['info', '-U', '--output=json', name], ctx.qDir);
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.stdout) as Info).format;
}

async function both(ctx: ObserveContext, args: (dir: string) => string[]): Promise<[Awaited<ReturnType<typeof run>>, Awaited<ReturnType<typeof run>>]> {
  return Promise.all([qimg(args(ctx.qDir), ctx.qDir), qimg(args(ctx.vDir), ctx.vDir)]);
}

type Run = Awaited<ReturnType<typeof run>>;

/** `info` (or `info --backing-chain`) of both sides, shown normalised, with a difference when they differ. */
async function compareInfo(ctx: ObserveContext, name: string, args: string[]): Promise<{ q: Run; v: Run; diff?: ImageDiff }> {
  const [q, v] = await both(ctx, () => ['info', '-U', '--output=json', ...args, name]);
  const show = (r: Run): string =>
    r.status === 0 ? JSON.stringify(normalizeInfo(JSON.parse(r.stdout), ctx.caseDirs), null, 1) : `exit ${r.status}: ${normalizeText(r.stderr, ctx.caseDirs).trim()}`;
  const [qs, vs] = [show(q), show(v)];
  return qs === vs ? { q, v } : { q, v, diff: { kind: 'info', file: name, summary: firstDifference(qs, vs), qemu: qs, vdisk: vs } };
}

/**
 * How far to look into an image: huge ones only through info and check,
 * since qemu-img reads them block by block (map of an empty 1 PiB qcow2
 * takes 25 s, check of a 64 TiB vmdk 49 s); formats without block status
 * already above 16 GiB.
 */
function deep(fmt: string, size: number): boolean {
  return size <= (fmt === 'raw' || fmt === 'qcow2' ? 4 * 1024 ** 4 : 16 * 1024 ** 3);
}

async function compareFile(ctx: ObserveContext, name: string): Promise<ImageDiff[]> {
  const fmt = await formatOf(ctx, name);
  const info = await compareInfo(ctx, name, fmt ? ['-f', fmt] : []);
  const diffs: ImageDiff[] = info.diff ? [info.diff] : [];
  if (info.q.status !== 0 || info.v.status !== 0 || !fmt) return diffs;
  const qInfo = JSON.parse(info.q.stdout) as Info;
  const vInfo = JSON.parse(info.v.stdout) as Info;
  // encrypted images need their secret for anything beyond info; vdisk does not open them yet
  if (qInfo.encrypted || fmt === 'luks') return diffs;
  // the whole chain must open (qemu-img check and map loop for minutes on a backing loop)
  if (qInfo['backing-filename'] !== undefined || vInfo['backing-filename'] !== undefined) {
    const chain = await compareInfo(ctx, name, ['-f', fmt, '--backing-chain']);
    if (chain.diff && !info.diff) diffs.push(chain.diff);
    if (chain.q.status !== 0 || chain.v.status !== 0) return diffs;
  }
  const size = qInfo['virtual-size'] ?? 0;
  if (fmt === 'raw' || fmt === 'qcow2' || deep(fmt, size)) diffs.push(...(await compareCheck(ctx, name, fmt)));
  if (!deep(fmt, size)) return diffs;
  diffs.push(...(await compareMap(ctx, name, fmt)));
  diffs.push(...(await compareContent(ctx, name, fmt)));
  if (fmt === 'qcow2') {
    diffs.push(...(await compareSnapshots(ctx, name, qInfo, vInfo)));
    diffs.push(...(await compareBitmaps(ctx, name, qInfo, vInfo)));
  }
  return diffs;
}

/** check's exit codes by how bad they are: clean, leaks, corruptions; anything else only equals itself. */
function severity(status: number): number {
  return ({ 0: 0, 3: 1, 2: 2 } as Record<number, number>)[status] ?? 99;
}

/** Guest content through `qemu-img compare`; when it cannot open them, whether each image opens at all (same error both sides is no difference). */
async function compareContent(ctx: ObserveContext, name: string, fmt: string): Promise<ImageDiff[]> {
  const r = await qimg(['compare', '-U', '-f', fmt, '-F', fmt, join(ctx.qDir, name), join(ctx.vDir, name)], ctx.qDir);
  if (r.status === 0) return [];
  const text = (x: { stdout: string; stderr: string }): string => normalizeText(x.stdout + x.stderr, ctx.caseDirs).trim();
  if (r.status === 1) return [{ kind: 'content', file: name, summary: `compare: ${text(r).split('\n').at(-1)}`, qemu: '', vdisk: text(r) }];
  const [a, b] = await both(ctx, () => ['compare', '-U', '-f', fmt, '-F', fmt, name, name]);
  if (a.status === b.status && text(a) === text(b)) return [];
  return [{ kind: 'content', file: name, summary: `readable: qemu's ${a.status} vdisk's ${b.status}: ${text(b).split('\n')[0] ?? ''}`, qemu: text(a), vdisk: text(b) }];
}

type Check = { corruptions?: number; leaks?: number; 'check-errors'?: number; 'allocated-clusters'?: number };

async function compareCheck(ctx: ObserveContext, name: string, fmt: string): Promise<ImageDiff[]> {
  const [qc, vc] = await both(ctx, () => ['check', '-U', '--output=json', '-f', fmt, name]);
  if (qc.status === 63 && vc.status === 63) return [];
  const parse = (s: string): Check => {
    try {
      return JSON.parse(s) as Check;
    } catch {
      return {};
    }
  };
  const a = parse(qc.stdout);
  const b = parse(vc.stdout);
  const worse =
    (b.corruptions ?? 0) > (a.corruptions ?? 0) || (b.leaks ?? 0) > (a.leaks ?? 0) || (b['check-errors'] ?? 0) > (a['check-errors'] ?? 0) ||
    (vc.status !== qc.status && !(severity(vc.status) < severity(qc.status)));
  const text = (r: { status: number; stdout: string; stderr: string }): string => `exit ${r.status}\n${r.stdout}${r.stderr}`;
  const out: ImageDiff[] = [];
  if (worse) {
    const essence = `exit ${qc.status}→${vc.status} corruptions ${a.corruptions ?? 0}→${b.corruptions ?? 0} leaks ${a.leaks ?? 0}→${b.leaks ?? 0} ${vc.stderr.trim().split('\n')[0] ?? ''}`;
    out.push({ kind: 'check', file: name, summary: essence, qemu: text(qc), vdisk: text(vc) });
  } else if (a['allocated-clusters'] !== b['allocated-clusters']) {
    out.push({ kind: 'allocation', file: name, summary: `check allocated-clusters ${a['allocated-clusters'] ?? 0} vs ${b['allocated-clusters'] ?? 0}`, qemu: text(qc), vdisk: text(vc) });
  }
  return out;
}

async function compareMap(ctx: ObserveContext, name: string, fmt: string): Promise<ImageDiff[]> {
  const [qm, vm] = await both(ctx, () => ['map', '-U', '--output=json', '-f', fmt, name]);
  if (qm.status !== 0 || vm.status !== 0) {
    const [a, b] = [qm, vm].map((r) => (r.status === 0 ? 'ok' : `exit ${r.status}: ${r.stderr.trim()}`)) as [string, string];
    return a === b ? [] : [{ kind: 'allocation', file: name, summary: `map ${firstDifference(a, b)}`, qemu: a, vdisk: b }];
  }
  const [qr, vr] = [normalizeMap(qm.stdout), normalizeMap(vm.stdout)];
  const [a, b] = [mapText(qr), mapText(vr)];
  if (a === b) return [];
  // same clusters allocated, different holes in the image file under them: say so, it matters less
  const holesOnly = mapText(withoutHostHoles(qr)) === mapText(withoutHostHoles(vr));
  return [{ kind: 'allocation', file: name, summary: `map ${holesOnly ? '(host holes only) ' : ''}${firstDifference(a, b)}`, qemu: a, vdisk: b }];
}

async function compareSnapshots(ctx: ObserveContext, name: string, qInfo: Info, vInfo: Info): Promise<ImageDiff[]> {
  const list = (i: Info): string => (i.snapshots ?? []).map((s) => `${s.id}:${s.name}`).join(',');
  if (!qInfo.snapshots?.length || list(qInfo) !== list(vInfo)) return []; // a differing list is an info difference already
  const out: ImageDiff[] = [];
  for (const s of qInfo.snapshots) {
    const copy = (dir: string, side: string): Promise<Awaited<ReturnType<typeof run>>> =>
      qimg(['convert', '-U', '-f', 'qcow2', '-l', `snapshot.id=${s.id}`, '-O', 'qcow2', name, join(ctx.scratch, `${side}-${s.id}.qcow2`)], dir);
    const [a, b] = await Promise.all([copy(ctx.qDir, 'q'), copy(ctx.vDir, 'v')]);
    if (a.status !== 0 || b.status !== 0) {
      if (a.status !== b.status) out.push({ kind: 'snapshot', file: name, summary: `snapshot ${s.id} (${s.name}) readable: qemu ${a.status} vdisk ${b.status}`, qemu: a.stderr, vdisk: b.stderr });
      continue;
    }
    const cmp = await qimg(['compare', '-f', 'qcow2', '-F', 'qcow2', `q-${s.id}.qcow2`, `v-${s.id}.qcow2`], ctx.scratch);
    if (cmp.status !== 0) out.push({ kind: 'snapshot', file: name, summary: `snapshot ${s.id} (${s.name}) content: ${cmp.stdout.trim().split('\n')[0]}`, qemu: '', vdisk: cmp.stdout + cmp.stderr });
  }
  return out;
}

async function compareBitmaps(ctx: ObserveContext, name: string, qInfo: Info, vInfo: Info): Promise<ImageDiff[]> {
  const list = (i: Info): { name: string; flags: string[] }[] => i['format-specific']?.data?.bitmaps ?? [];
  const out: ImageDiff[] = [];
  for (const bm of list(qInfo)) {
    const other = list(vInfo).find((x) => x.name === bm.name);
    if (!other || bm.flags.includes('in-use') || other.flags.includes('in-use')) continue; // info shows those
    const [a, b] = await Promise.all([dirtyRanges(ctx.qDir, name, 'qcow2', bm.name), dirtyRanges(ctx.vDir, name, 'qcow2', bm.name)]);
    if (a !== b) out.push({ kind: 'bitmap', file: name, summary: `bitmap ${bm.name}: ${firstDifference(a, b)}`, qemu: a, vdisk: b });
  }
  return out;
}
