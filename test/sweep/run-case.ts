/**
 * Runs one case: identical copies of its inputs in two fresh directories,
 * q/ for qemu-img and v/ for vdisk (cwd, so relative names match), each step
 * compared as it runs (exit status, normalised stdout and stderr), then the
 * images left behind compared (observe.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { fixture } from './fixtures.js';
import { firstDifference, normalizeText } from './normalize.js';
import { compareImages, fileStamps } from './observe.js';
import { run, runTool, type ProcResult } from './proc.js';
import type { Case, Difference, Step } from './types.js';

export interface RunOptions {
  /** Where the built fixtures are. */
  readonly fixtures: string;
  /** Parent of the per-case directories. */
  readonly work: string;
  /** Keep the case directory (for debugging). */
  readonly keep?: boolean;
  readonly stepTimeoutMs?: number;
}

export interface CaseResult {
  readonly differences: Difference[];
  readonly steps: number;
  /** Wall time of the case. */
  readonly ms: number;
  /** The case directory, when kept. */
  readonly dir?: string;
}

const CLIP = 6000;
const clip = (s: string): string => (s.length > CLIP ? `${s.slice(0, CLIP)}\n…(${s.length - CLIP} more)` : s);

async function copyInputs(c: Case, options: RunOptions, dirs: string[]): Promise<void> {
  const files = [...new Set(c.inputs.flatMap((n) => fixture(n).files))];
  if (!files.length) return;
  for (const d of dirs) {
    // cp keeps the holes (a 1 TiB sparse input stays a few KiB; copyFile would write it all)
    // and, with auto, keeps written zeros as data, as the fixture has them
    const r = await run('cp', ['--sparse=auto', '--reflink=auto', '-t', d, ...files], { cwd: options.fixtures, timeoutMs: 60_000 });
    if (r.status !== 0) throw new Error(`copying inputs of ${c.id}: ${r.stderr}`);
  }
}

function runStep(step: Step, side: 'q' | 'v', cwd: string, timeoutMs: number): Promise<ProcResult> {
  if (step.tool === 'img') return runTool(side === 'q' ? 'qemu-img' : 'vdisk', step.argv, { cwd, timeoutMs });
  return runTool(step.tool, step.argv, { cwd, timeoutMs });
}

/** The first lines of a result, for a one-line summary. */
function gist(r: ProcResult): string {
  return (r.stderr.trim() || r.stdout.trim()).split('\n').slice(0, 2).join(' | ').slice(0, 200);
}

function full(r: ProcResult, dirs: string[]): string {
  return clip(`exit ${r.status}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${normalizeText(r.stdout, dirs)}--- stderr\n${normalizeText(r.stderr, dirs)}`);
}

/** The differences of one step, most serious only when the exit status already differs. */
function compareStep(c: Case, i: number, q: ProcResult, v: ProcResult, dirs: string[], cascade: boolean): Difference[] {
  const step = c.steps[i]!;
  const base = { caseId: c.id, command: c.command, step: i, argv: step.argv, ...(step.tool === 'img' ? {} : { tool: step.tool }), cascade, qemu: full(q, dirs), vdisk: full(v, dirs) };
  if (q.timedOut !== v.timedOut) return [{ ...base, kind: 'timeout', summary: `${q.timedOut ? 'qemu' : 'vdisk'} timed out` }];
  if (q.status !== v.status) return [{ ...base, kind: 'exit', summary: `exit ${q.status} vs ${v.status}: ${gist(q)} ‖ ${gist(v)}` }];
  const out: Difference[] = [];
  const [qo, vo] = [normalizeText(q.stdout, dirs), normalizeText(v.stdout, dirs)];
  const [qe, ve] = [normalizeText(q.stderr, dirs), normalizeText(v.stderr, dirs)];
  if (!c.exitOnly && qo !== vo) out.push({ ...base, kind: 'stdout', summary: firstDifference(qo, vo) });
  if (qe !== ve) out.push({ ...base, kind: 'stderr', summary: firstDifference(qe, ve) });
  return out;
}

/** True once a step ended differently (later differences may follow from it). */
function diverged(found: readonly Difference[]): boolean {
  return found.some((d) => d.kind === 'exit' || d.kind === 'timeout');
}

/** Runs `c` and returns every difference found. */
export async function runCase(c: Case, options: RunOptions): Promise<CaseResult> {
  const started = Date.now();
  const root = mkdtempSync(join(options.work, 'case-'));
  const [qDir, vDir, scratch] = ['q', 'v', 's'].map((d) => join(root, d)) as [string, string, string];
  for (const d of [qDir, vDir, scratch]) mkdirSync(d);
  const dirs = [qDir, vDir, root];
  try {
    await copyInputs(c, options, [qDir, vDir]);
    const before = { q: fileStamps(qDir), v: fileStamps(vDir) };
    const differences: Difference[] = [];
    for (let i = 0; i < c.steps.length; i++) {
      const step = c.steps[i]!;
      const t = options.stepTimeoutMs ?? 60_000;
      const [q, v] = await Promise.all([runStep(step, 'q', qDir, t), runStep(step, 'v', vDir, t)]);
      differences.push(...compareStep(c, i, q, v, dirs, diverged(differences)));
    }
    if (!c.exitOnly) {
      const after = { q: fileStamps(qDir), v: fileStamps(vDir) };
      const unchanged = new Set([...before.q.keys()].filter((n) => before.q.get(n) === after.q.get(n) && before.v.get(n) === after.v.get(n)));
      const found = await compareImages({ qDir, vDir, scratch, caseDirs: dirs, hints: c.hints ?? {}, unchanged });
      const cascade = diverged(differences);
      for (const d of found) differences.push({ caseId: c.id, command: c.command, step: -1, argv: [], cascade, ...d, qemu: clip(d.qemu), vdisk: clip(d.vdisk) });
    }
    return { differences, steps: c.steps.length, ms: Date.now() - started, ...(options.keep ? { dir: root } : {}) };
  } finally {
    if (!options.keep) rmSync(root, { recursive: true, force: true });
  }
}
