#!/usr/bin/env node
/** Entry point of the `vdisk` executable. */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

// I/O and zlib run on the libuv pool: one thread per core (at least 4), set before the first I/O.
process.env['UV_THREADPOOL_SIZE'] ??= String(Math.max(4, availableParallelism()));
// A CLI run is short: with V8's default tier-up budget, TurboFan compiles dozens of functions
// that run for a fraction of a second, on the cores the copy needs (~15% of a 2 GiB convert's
// CPU on two cores). A larger budget leaves those in the baseline tiers and still optimizes
// the loops that run long (L2 walks over terabytes, zero scans).
setFlagsFromString('--interrupt-budget=1000000');

/** Resolves when `s` has room again, or can never have (closed or failed: later writes report that). */
function drained(s: NodeJS.WriteStream): Promise<void> {
  if (s.destroyed || !s.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      s.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    s.on('drain', done).on('close', done).on('error', done);
  });
}

// A reader that stops early (`vdisk map ... | head`): qemu-img ignores SIGPIPE and the failed
// writes, finishes and exits with its own status; so does vdisk, instead of dying on the error.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

const { run } = await import('./main.js');
const { PROG } = await import('./context.js');
const { rawArguments } = await import('./raw-argv.js');
const { encodeName, hasEscapes } = await import('../core/byte-names.js');

/** Names that are not UTF-8 go out as their own bytes, as qemu-img prints them. */
const bytesOf = (t: string): string | Buffer => (hasEscapes(t) ? encodeName(t) : t);

try {
  process.exitCode = await run(rawArguments(), {
    stdout: (t) => process.stdout.write(bytesOf(t)),
    stderr: (t) => process.stderr.write(bytesOf(t)),
    drain: () => drained(process.stdout),
    drainStderr: () => drained(process.stderr),
  });
} catch (err) {
  process.stderr.write(`${PROG}: internal error: ${String(err)}\n`);
  process.exitCode = 1;
}
