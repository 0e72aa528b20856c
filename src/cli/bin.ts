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
  });
} catch (err) {
  process.stderr.write(`${PROG}: internal error: ${String(err)}\n`);
  process.exitCode = 1;
}
