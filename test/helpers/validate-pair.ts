/**
 * Runs one command line with qemu-img and with vdisk, each in a fresh
 * directory holding the same inputs, and collects everything a user could
 * see: exit status, stdout, stderr (qemu-img's prefix turned into vdisk's),
 * the files left behind, and `qemu-img info/check/map` of the image made.
 * Runs are async so a table of cases uses both cores.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { asVdisk, VDISK_BIN } from './cli.js';

/** What one tool's run left to see. */
export interface PairSide {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** `name:size` of every file in the directory afterwards. */
  readonly files: readonly string[];
  /** `qemu-img info --output=json` (host-dependent fields masked), when `image` exists. */
  readonly info?: string | undefined;
  /** `qemu-img check` output. */
  readonly check?: string | undefined;
  /** `qemu-img map --output=json` output. */
  readonly map?: string | undefined;
}

/** One case: the argv both tools get (qemu-img's), and the inputs made first with shell commands. */
export interface PairCase {
  readonly args: readonly string[];
  /** Shell commands run in each directory first (qemu-img/qemu-io, so inputs are qemu's). */
  readonly setup?: readonly string[] | undefined;
  /** The image to inspect afterwards. */
  readonly image?: string | undefined;
  /** Its format, passed as -f to the inspection commands. */
  readonly format?: string | undefined;
  /** Skip `map` of the result (huge virtual sizes). */
  readonly noMap?: boolean | undefined;
}

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

async function side(tool: 'qemu' | 'vdisk', c: PairCase, cwd: string): Promise<PairSide> {
  mkdirSync(cwd, { recursive: true });
  for (const s of c.setup ?? []) {
    const r = await run('sh', ['-c', s], cwd);
    if (r.status !== 0) throw new Error(`setup '${s}' failed: ${r.stderr}`);
  }
  const r = tool === 'qemu' ? await run('qemu-img', c.args, cwd) : await run(process.execPath, [VDISK_BIN, ...c.args], cwd);
  const files = readdirSync(cwd)
    .sort()
    .map((f) => `${f}:${statSync(join(cwd, f)).size}`);
  const out: PairSide = { status: r.status, stdout: r.stdout, stderr: tool === 'qemu' ? asVdisk(r.stderr) : r.stderr, files };
  if (!c.image || !readdirSync(cwd).includes(c.image)) return out;
  const f = c.format ? ['-f', c.format] : [];
  const info = await run('qemu-img', ['info', '--output=json', ...f, c.image], cwd);
  const masked = (info.stdout || info.stderr).replace(/"actual-size": \d+/, '"actual-size": X').replace(/"(cid|parent-cid)": \d+/g, '"$1": X');
  const check = await run('qemu-img', ['check', ...f, c.image], cwd);
  const map = c.noMap ? undefined : await run('qemu-img', ['map', '--output=json', ...f, c.image], cwd);
  return { ...out, info: masked, check: check.stdout + check.stderr, map: map?.stdout };
}

/** Runs `c` with both tools under `root/<id>/{q,v}`. */
export async function runPair(root: string, id: string, c: PairCase): Promise<{ qemu: PairSide; vdisk: PairSide }> {
  const [qemu, vdisk] = await Promise.all([side('qemu', c, join(root, id, 'q')), side('vdisk', c, join(root, id, 'v'))]);
  return { qemu, vdisk };
}

/** Maps `items` through `fn`, at most `limit` at a time, keeping order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** One line per field of `keys` where the two sides of a case differ (the case's argv, then both values). */
export function pairDiffs(cases: readonly PairCase[], results: readonly { qemu: PairSide; vdisk: PairSide }[], keys: readonly (keyof PairSide)[], qemuSide: (s: PairSide) => PairSide = (s) => s): string[] {
  const diffs: string[] = [];
  results.forEach(({ qemu, vdisk }, i) => {
    const q = qemuSide(qemu);
    for (const k of keys) {
      if (JSON.stringify(q[k]) !== JSON.stringify(vdisk[k])) diffs.push(`${(cases[i] as PairCase).args.join(' ')}: ${k}\n  qemu:  ${JSON.stringify(q[k])}\n  vdisk: ${JSON.stringify(vdisk[k])}`);
    }
  });
  return diffs;
}
