/** Small deterministic fuzzing helpers shared by the fuzz tests. */
import assert from 'node:assert/strict';

import { UnsafeReferenceError, VdiskError } from '../../src/core/errors.js';

/** Iterations for a fuzz test: small in `npm test`, raised with VDISK_FUZZ_ITERATIONS. */
export function iterations(defaultCount: number): number {
  const env = Number(process.env['VDISK_FUZZ_ITERATIONS']);
  return Number.isFinite(env) && env > 0 ? env : defaultCount;
}

/**
 * A seeded PRNG (mulberry32) so failures reproduce. VDISK_FUZZ_SEED (an
 * integer) is mixed into every seed: long runs explore other inputs, and a
 * failure reproduces with the same value; unset, `npm test` stays the same.
 */
export function rng(seed: number): () => number {
  const extra = Number(process.env['VDISK_FUZZ_SEED']);
  let a = (Number.isInteger(extra) ? seed ^ Math.imul(extra, 0x9e3779b1) : seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Zero and data pieces of random lengths (up to `largest` bytes, many shorter
 * than a sector) for the zero-scan tests; a share `oneByte` of the data pieces
 * is one non-zero byte, placed where quick checks do not look. Data bytes are
 * random with `randomData`, else a fixed non-zero sequence.
 */
export function sparsePattern(length: number, rand: () => number, o: { largest: number; oneByte: number; randomData: boolean }): Uint8Array {
  const buf = new Uint8Array(length);
  for (let pos = 0; pos < length; ) {
    const scale = [8, 512, 4096, o.largest][Math.floor(rand() * 4)] as number;
    const n = Math.min(length - pos, 1 + Math.floor(rand() * scale));
    if (rand() < 0.5) {
      if (rand() < o.oneByte) buf[pos + Math.floor(rand() * n)] = 1 + Math.floor(rand() * 255);
      else for (let i = pos; i < pos + n; i++) buf[i] = o.randomData ? 1 + Math.floor(rand() * 255) : 1 + ((i * 7) % 251);
    }
    pos += n;
  }
  return buf;
}

/** Values that break parsers: boundaries of the integer widths and of JavaScript numbers. */
export const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0xfff, 0x1000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Mutates `buf` in place: byte flips, interesting 32-bit values, or zeroed runs. */
export function mutate(buf: Uint8Array, next: () => number, maxOffset = buf.length): void {
  const at = (): number => Math.floor(next() * Math.max(1, Math.min(maxOffset, buf.length)));
  const kind = next();
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (kind < 0.4) {
    const n = 1 + Math.floor(next() * 8);
    for (let i = 0; i < n; i++) buf[at()] = Math.floor(next() * 256);
  } else if (kind < 0.8) {
    const off = Math.min(at(), buf.length - 4);
    if (off >= 0) view.setUint32(off, INTERESTING_U32[Math.floor(next() * INTERESTING_U32.length)] ?? 0, next() < 0.5);
  } else {
    const off = Math.min(at(), buf.length - 8);
    if (off >= 0) view.setBigUint64(off, next() < 0.5 ? 0xffffffffffffffffn : BigInt(Math.floor(next() * 2 ** 53)), next() < 0.5);
  }
}

/** Runs `fn`, accepting success or a VdiskError; anything else is rethrown with the case number. */
export async function expectTypedOrOk(label: string, fn: () => Promise<unknown>): Promise<'ok' | 'error'> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    if (err instanceof VdiskError) return 'error';
    throw new Error(`${label}: untyped failure ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
}

/** A seeded xorshift32 PRNG: the generator of the older fuzz tests, whose seeds keep their cases with it. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/** Most time one case may take: a hang guard, generous for a loaded machine, not a timing. */
export const CASE_MS = 20_000;

/** External files the fuzzed images name are never opened. */
export const noExternal = { open: (): Promise<never> => Promise.reject(new UnsafeReferenceError('no external files in fuzz')) };

/**
 * Runs `count` cases: each must succeed or throw a VdiskError within
 * {@link CASE_MS}. Returns how many did which; asserts both happened, so a
 * mutation that never breaks anything (or always does) fails the test.
 */
export async function fuzzCases(count: number, run: (i: number) => Promise<unknown>): Promise<{ ok: number; errors: number }> {
  const counts = { ok: 0, errors: 0 };
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    if ((await expectTypedOrOk(`case ${i}`, () => run(i))) === 'ok') counts.ok++;
    else counts.errors++;
    assert.ok(Date.now() - started < CASE_MS, `case ${i} took ${Date.now() - started} ms`);
  }
  assert.ok(counts.ok > 0 && counts.errors > 0, JSON.stringify(counts));
  return counts;
}
