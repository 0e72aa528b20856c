/** Small builders the case generators share: steps, cases with stable ids, seeded picks. */
import { rng } from '../helpers/fuzz.js';
import { FIXTURES, fixture, type Fixture } from './fixtures.js';
import type { Case, Step } from './types.js';

export type Rand = () => number;

/** A seeded PRNG for one generator (never Math.random: ids and picks must reproduce). */
export function seeded(seed: number): Rand {
  return rng(seed);
}

export function pick<T>(r: Rand, items: readonly T[]): T {
  if (!items.length) throw new Error('pick from an empty list');
  return items[Math.floor(r() * items.length)]!;
}

/** `k` distinct items of `items`, in a seeded order. */
export function sample<T>(r: Rand, items: readonly T[], k: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, k);
}

/** A compared step: qemu-img in q/, vdisk in v/. */
export const img = (...argv: string[]): Step => ({ tool: 'img', argv });
/** Setup by qemu-img in both directories. */
export const qemuImg = (...argv: string[]): Step => ({ tool: 'qemu-img', argv });
/** Guest writes by qemu-io in both directories. */
export function qemuIo(format: string, file: string, ...cmds: string[]): Step {
  return { tool: 'qemu-io', argv: ['-f', format, ...cmds.flatMap((c) => ['-c', c]), file] };
}

/** Options of {@link makeCase}. */
export interface CaseExtra {
  readonly hints?: Record<string, string>;
  readonly formats?: readonly string[];
  readonly exitOnly?: boolean;
}

function stepText(s: Step): string {
  const words = s.argv.map((a) => (a === '' ? "''" : /[\s;]/.test(a) ? JSON.stringify(a) : a)).join(' ');
  return s.tool === 'img' ? words : `[${s.tool} ${words}]`;
}

/** Formats named by -f/-F/-O arguments (the tools' own spelling of an input or output format). */
function argFormats(steps: readonly Step[]): string[] {
  const out: string[] = [];
  for (const s of steps) s.argv.forEach((a, i) => ['-f', '-F', '-O'].includes(a) && s.argv[i + 1] && out.push(s.argv[i + 1]!));
  return out;
}

/**
 * A case whose id is its command lines (and its inputs when the command
 * lines do not name them all), so ids stay stable as generators grow.
 */
export function makeCase(command: string, inputs: readonly string[], steps: readonly Step[], extra: CaseExtra = {}): Case {
  const text = steps.map(stepText).join(' ; ');
  const unnamed = inputs.filter((n) => !steps.some((s) => s.argv.some((a) => a.includes(n))));
  const id = `${command}: ${unnamed.length ? `{${unnamed.join(',')}} ` : ''}${text}`;
  const hints: Record<string, string> = {};
  for (const n of inputs) hints[n] = fixture(n).format;
  Object.assign(hints, extra.hints);
  const formats = [...new Set([...inputs.map((n) => fixture(n).format), ...argFormats(steps), ...(extra.formats ?? [])])];
  return { id, command, formats, inputs, steps, hints, ...(extra.exitOnly ? { exitOnly: true } : {}) };
}

/** Fixtures with every one of `tags`. */
export function tagged(...tags: string[]): Fixture[] {
  return FIXTURES.filter((f) => tags.every((t) => f.tags.includes(t)));
}

/** Fixtures without any of `tags`. */
export function without(list: readonly Fixture[], ...tags: string[]): Fixture[] {
  return list.filter((f) => !tags.some((t) => f.tags.includes(t)));
}

/** Fixtures of `format`. */
export function ofFormat(format: string): Fixture[] {
  return FIXTURES.filter((f) => f.format === format);
}

/** Every fixture. */
export const ALL: readonly Fixture[] = FIXTURES;
