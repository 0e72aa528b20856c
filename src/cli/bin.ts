#!/usr/bin/env node
/** Entry point of the `vdisk` executable. */
import { setUpProcess } from './process-setup.js';

setUpProcess();

/** Runs the command line; loaded after the settings above, which must precede the first I/O. */
async function main(): Promise<void> {
  const { run } = await import('./main.js');
  const { PROG } = await import('./context.js');
  const { rawArguments } = await import('./raw-argv.js');
  const { encodeName, hasEscapes } = await import('../core/byte-names.js');
  const { fdOutput } = await import('./fd-output.js');
  const out = fdOutput(1);
  const err = fdOutput(2);

  /** Names that are not UTF-8 go out as their own bytes, as qemu-img prints them. */
  const bytesOf = (t: string): string | Buffer => (hasEscapes(t) ? encodeName(t) : t);

  try {
    process.exitCode = await run(rawArguments(), {
      stdout: (t) => out.write(bytesOf(t)),
      stderr: (t) => err.write(bytesOf(t)),
      // Writes are synchronous: nothing is ever waiting to drain.
      drain: () => Promise.resolve(),
      drainStderr: () => Promise.resolve(),
    });
  } catch (e) {
    err.write(`${PROG}: internal error: ${String(e)}\n`);
    process.exitCode = 1;
  }
}

// No top-level await: the bundle (scripts/bundle-cli.mjs) is a CommonJS script, so V8 can cache its code.
void main();
