/** Process-wide settings of a CLI run, made before its first I/O and before the bundle is compiled. */
import { availableParallelism } from 'node:os';

import { v8 } from '../core/lazy-builtins.js';

/** Applies the settings (idempotent: bin.ts and the launcher both call it). */
export function setUpProcess(): void {
  // I/O and zlib run on the libuv pool, set before the first I/O: one thread per core (at least 2,
  // so a read overlaps a write). More threads than cores lost time on two cores: 4 threads made
  // every local convert 5–15% slower (bench/RESULTS.md, seventh session), the extra threads'
  // reads and writes contending for the cores and the file's locks with the ordered writer's.
  process.env['UV_THREADPOOL_SIZE'] ??= String(threadPoolSize(availableParallelism()));
}

/** The CLI's libuv pool size on a machine with `cores` cores (an explicit UV_THREADPOOL_SIZE wins). */
export function threadPoolSize(cores: number): number {
  return Math.max(2, cores);
}

/**
 * How long a command runs before it is tuned as a long one: loading
 * `node:v8` costs ~2 ms of CPU, most of a 1 MiB convert's own work, and
 * what the tuning saves shows only in runs of seconds.
 */
const LONG_RUN_MS = 50;

/**
 * Settings for a command that may run long (every command but `info`),
 * applied once it has run {@link LONG_RUN_MS}: short commands never load
 * `node:v8`. The timer holds no run open.
 */
export function tuneForLongRun(): void {
  // A run that makes the code cache (scripts/cli-cache.mjs) keeps V8's default flags: a cache made
  // under other flags is refused by every later run.
  if (process.env['VDISK_WRITE_CODE_CACHE'] !== undefined) return;
  setTimeout(raiseInterruptBudget, LONG_RUN_MS).unref();
}

function raiseInterruptBudget(): void {
  // A CLI run is short: with V8's default tier-up budget, TurboFan compiles dozens of functions
  // that run for a fraction of a second, on the cores the copy needs (~15% of a 2 GiB convert's
  // CPU on two cores). A larger budget leaves those in the baseline tiers and still optimizes
  // the loops that run long (L2 walks over terabytes, zero scans). V8 reads the budget each time
  // a function's runs out, so functions already running take it too; the code cache is compiled
  // under the default flags, as every run compiles it before this.
  v8().setFlagsFromString('--interrupt-budget=1000000');
}
