/**
 * The sweep's case list: every generator's cases, deduplicated by id, in a
 * fixed order; and the samples drawn from it (every k-th case, topped up
 * so every command and every format appears).
 */
import { seeded, sample } from './case-kit.js';
import { chainCases } from './gen-chain.js';
import { convertCases } from './gen-convert.js';
import { createCases } from './gen-create.js';
import { inspectCases } from './gen-inspect.js';
import { miscCases } from './gen-misc.js';
import { modifyCases } from './gen-modify.js';
import { sequenceCases } from './gen-seq.js';
import type { Case } from './types.js';

/** Every case, deterministic (no clock, no Math.random). */
export function generateCases(): Case[] {
  const seen = new Set<string>();
  const out: Case[] = [];
  for (const c of [...createCases(), ...convertCases(), ...inspectCases(), ...modifyCases(), ...chainCases(), ...miscCases(), ...sequenceCases()]) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    out.push(c);
  }
  return out;
}

/** `n` cases: every k-th one, then one more for each command and format the stride missed. */
export function coverageSample(all: readonly Case[], n: number): Case[] {
  if (n >= all.length) return [...all];
  const k = Math.max(1, Math.floor(all.length / n));
  const chosen = new Set<Case>(all.filter((_, i) => i % k === 0));
  const has = (pred: (c: Case) => boolean): boolean => [...chosen].some(pred);
  const commands = new Set(all.map((c) => c.command.replace(/^seq:.*/, 'seq')));
  for (const cmd of commands) {
    const match = (c: Case): boolean => c.command.replace(/^seq:.*/, 'seq') === cmd;
    if (!has(match)) chosen.add(all.find(match)!);
  }
  for (const fmt of new Set(all.flatMap((c) => c.formats))) {
    const match = (c: Case): boolean => c.formats.includes(fmt);
    if (!has(match)) chosen.add(all.find(match)!);
  }
  return all.filter((c) => chosen.has(c));
}

/** `n` cases picked by a seeded PRNG (the runner's --sample with --seed). */
export function randomSample(all: readonly Case[], n: number, seed: number): Case[] {
  const picked = new Set(sample(seeded(seed), all, n));
  return all.filter((c) => picked.has(c));
}
