#!/usr/bin/env node
/** Entry point of the `vdisk` executable. */
import { availableParallelism } from 'node:os';

// I/O and zlib run on the libuv pool: one thread per core (at least 4), set before the first I/O.
process.env['UV_THREADPOOL_SIZE'] ??= String(Math.max(4, availableParallelism()));

const { run } = await import('./main.js');
const { PROG } = await import('./context.js');

try {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  });
} catch (err) {
  process.stderr.write(`${PROG}: internal error: ${String(err)}\n`);
  process.exitCode = 1;
}
