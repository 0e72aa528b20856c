/** Summaries of a sweep's differences: one line each, grouped by (command, class), most serious first. */
import { acceptedFor } from './deliberate.js';
import { DIFF_KINDS, type Difference } from './types.js';

/** Marks each difference a deliberate or known-open entry explains; returns those neither does. */
export function triage(diffs: Difference[]): Difference[] {
  for (const d of diffs) {
    const hit = acceptedFor(d);
    if (hit?.known) d.known = hit.entry.id;
    else if (hit) d.deliberate = hit.entry.id;
  }
  return diffs.filter((d) => !d.deliberate && !d.known);
}

/** Counts of accepted differences per entry id, for the summary. */
function acceptedCounts(diffs: readonly Difference[], key: 'deliberate' | 'known'): string {
  const counts = new Map<string, number>();
  for (const d of diffs) {
    const id = d[key];
    if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([id, n]) => `${id} ${n}`).join(', ') || 'none';
}

/** One line: class, case id, step, file and the essence. */
export function diffLine(d: Difference): string {
  const where = d.step < 0 ? `images${d.file ? ` ${d.file}` : ''}` : `step ${d.step + 1}${d.tool ? ` (${d.tool})` : ''}`;
  return `${d.kind}${d.cascade ? '(after)' : ''} [${d.caseId}] ${where}: ${d.summary}`;
}

/** The command a difference is grouped under: the step's own for sequences, else the case's. */
function commandOf(d: Difference): string {
  const own = d.tool ?? d.argv[0] ?? d.command.slice(4);
  if (d.command.startsWith('seq:')) return `seq ${own}`;
  return d.tool ? `${d.command} (${d.tool} setup)` : d.command;
}

export interface Group {
  readonly command: string;
  readonly kind: string;
  readonly count: number;
  readonly cases: number;
  readonly examples: Difference[];
}

/** Differences grouped by (command, class), most serious class first, then by count. */
export function group(diffs: readonly Difference[]): Group[] {
  const groups = new Map<string, Difference[]>();
  for (const d of diffs) {
    const key = `${commandOf(d)}\t${d.kind}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const rank = (k: string): number => DIFF_KINDS.indexOf(k as (typeof DIFF_KINDS)[number]);
  return [...groups.entries()]
    .map(([key, list]) => {
      const [command, kind] = key.split('\t') as [string, string];
      const primary = list.filter((d) => !d.cascade);
      return { command, kind, count: list.length, cases: new Set(list.map((d) => d.caseId)).size, examples: (primary.length ? primary : list).slice(0, 2) };
    })
    .sort((a, b) => rank(a.kind) - rank(b.kind) || b.cases - a.cases);
}

/** The summary the runner prints. */
export function summary(stats: { cases: number; steps: number; seconds: number; failedCases: number }, diffs: readonly Difference[]): string {
  const open = diffs.filter((d) => !d.deliberate && !d.known);
  const lines = [
    `sweep: ${stats.cases} cases, ${stats.steps} steps, ${stats.seconds.toFixed(0)} s; ${stats.failedCases} cases differ; ${open.length} open differences`,
    `deliberate: ${acceptedCounts(diffs, 'deliberate')}`,
    `known open (tracked by issues): ${acceptedCounts(diffs, 'known')}`,
    `by class: ${DIFF_KINDS.map((k) => `${k} ${open.filter((d) => d.kind === k).length}`).join(', ')}`,
    'by command and class (cases; examples):',
  ];
  for (const g of group(open).slice(0, 60)) {
    lines.push(`  ${g.command} / ${g.kind}: ${g.cases} cases, ${g.count} differences`);
    for (const e of g.examples) lines.push(`      e.g. [${e.caseId}] ${e.file ? `${e.file}: ` : ''}${e.summary.slice(0, 240)}`);
  }
  return lines.join('\n');
}

/** Every group as Markdown: a table row per (command, class), then each group's examples with both outputs cut short. */
export function markdown(stats: { cases: number; steps: number; seconds: number; failedCases: number }, diffs: readonly Difference[]): string {
  const open = diffs.filter((d) => !d.deliberate && !d.known);
  const groups = group(open);
  const out = [
    `# Sweep findings`,
    '',
    `${stats.cases} cases, ${stats.steps} steps, ${Math.round(stats.seconds)} s; ${stats.failedCases} cases differ; ${open.length} open differences; deliberate: ${acceptedCounts(diffs, 'deliberate')}; known open: ${acceptedCounts(diffs, 'known')}.`,
    '',
    '| command | class | cases | differences | example |',
    '|---|---|---|---|---|',
    ...groups.map((g) => `| ${g.command} | ${g.kind} | ${g.cases} | ${g.count} | \`${(g.examples[0]?.caseId ?? '').replaceAll('|', '\\|')}\` |`),
    '',
  ];
  for (const g of groups) {
    out.push(`## ${g.command} / ${g.kind} (${g.cases} cases)`, '');
    for (const e of g.examples) out.push(`- \`${e.caseId}\`${e.file ? ` (${e.file})` : ''}: ${e.summary.slice(0, 400)}`);
    out.push('');
  }
  return out.join('\n');
}
