/**
 * `npm run sweep`: the whole differential option matrix, qemu-img 7.2
 * against vdisk. Cases run concurrently (each one's tools are child
 * processes, so N cases in flight keep N×2 processes busy); prints a
 * summary and writes every difference to a JSON report.
 *
 * Options: --report FILE (default /tmp/vdisk-sweep-report.json),
 * --filter REGEX (on case ids), --sample N, --seed S (random sample; without
 * it --sample takes every k-th case), --jobs N, --keep (case dirs), --list,
 * --markdown FILE (every group with examples, for dispatching fixes).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';

import { coverageSample, generateCases, randomSample } from './cases.js';
import { buildFixtures } from './fixtures.js';
import { run } from './proc.js';
import { group, markdown, summary, triage } from './report.js';
import { runCase } from './run-case.js';
import type { Case, Difference } from './types.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function select(all: Case[]): Case[] {
  const filter = arg('filter');
  const list = filter ? all.filter((c) => new RegExp(filter).test(c.id)) : all;
  const n = arg('sample');
  if (!n) return list;
  const seed = arg('seed');
  return seed ? randomSample(list, Number(n), Number(seed)) : coverageSample(list, Number(n));
}

async function main(): Promise<number> {
  const cases = select(generateCases());
  if (process.argv.includes('--list')) {
    for (const c of cases) process.stdout.write(`${c.id}\n`);
    return 0;
  }
  const root = mkdtempSync(join(tmpdir(), 'vdisk-sweep-'));
  const cleanup = (): void => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const started = Date.now();
  try {
    await buildFixtures(join(root, 'fixtures'));
    const work = join(root, 'work');
    rmSync(work, { recursive: true, force: true });
    await run('mkdir', ['-p', work]);
    const limit = pLimit(Number(arg('jobs') ?? availableParallelism() + 1));
    const diffs: Difference[] = [];
    let steps = 0;
    let done = 0;
    let failedCases = 0;
    const slowest: [number, string][] = [];
    await Promise.all(
      cases.map((c) =>
        limit(async () => {
          const r = await runCase(c, { fixtures: join(root, 'fixtures'), work, keep: process.argv.includes('--keep') }).catch((err: Error) => ({
            steps: 0,
            ms: 0,
            differences: [{ caseId: c.id, command: c.command, step: -1, argv: [], kind: 'files' as const, summary: `the case could not run: ${err.message}`, qemu: '', vdisk: '', cascade: false }],
          }));
          steps += r.steps;
          slowest.push([r.ms, c.id]);
          diffs.push(...r.differences);
          if (triage([...r.differences]).length) failedCases++;
          if (++done % 100 === 0 || done === cases.length) {
            const s = (Date.now() - started) / 1000;
            process.stderr.write(`  ${done}/${cases.length} cases, ${failedCases} differ, ${s.toFixed(0)} s (eta ${((s / done) * (cases.length - done)).toFixed(0)} s)\n`);
          }
        }),
      ),
    );
    const open = triage(diffs);
    const seconds = (Date.now() - started) / 1000;
    const stats = { cases: cases.length, steps, seconds, failedCases };
    process.stdout.write(`${summary(stats, diffs)}\n`);
    const slow = slowest.sort((a, b) => b[0] - a[0]).slice(0, 8);
    process.stdout.write(`slowest cases:\n${slow.map(([ms, id]) => `  ${(ms / 1000).toFixed(1)} s  ${id}`).join('\n')}\n`);
    const report = arg('report') ?? join(tmpdir(), 'vdisk-sweep-report.json');
    const order = new Map(cases.map((c, i) => [c.id, i]));
    const byCase = [...diffs].sort((a, b) => (order.get(a.caseId) ?? 0) - (order.get(b.caseId) ?? 0) || a.step - b.step);
    writeFileSync(report, JSON.stringify({ ...stats, groups: group(open).map((g) => ({ ...g, examples: g.examples.map((e) => e.caseId) })), differences: byCase }, null, 1));
    process.stdout.write(`report: ${report}\n`);
    const md = arg('markdown');
    if (md) writeFileSync(md, markdown(stats, diffs));
    return open.length ? 1 : 0;
  } finally {
    if (!process.argv.includes('--keep')) cleanup();
  }
}

process.exitCode = await main();
