#!/usr/bin/env node
/** Entry point of the `vdisk` executable. */
import { setUpProcess } from './process-setup.js';

setUpProcess();

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

/** Runs the command line; loaded after the settings above, which must precede the first I/O. */
async function main(): Promise<void> {
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
}

// No top-level await: the bundle (scripts/bundle-cli.mjs) is a CommonJS script, so V8 can cache its code.
void main();
