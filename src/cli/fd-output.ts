/**
 * The CLI's stdout and stderr as synchronous writes to file descriptors 1
 * and 2. Node writes to files, pipes and terminals synchronously on Linux
 * anyway; going to the descriptor directly keeps `process.stdout`, and the
 * stream modules it loads (a tenth of a short command's start-up), out of
 * every run. A reader that stops early (`vdisk map … | head`) ends the
 * output, not the run: qemu-img ignores SIGPIPE and the failed writes too.
 */
import { writeSync } from 'node:fs';

/** Where output goes: `write` never throws for a closed reader. */
export interface FdOutput {
  write(text: string | Uint8Array): void;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** An output on `fd` (1 or 2). */
export function fdOutput(fd: number): FdOutput {
  let closed = false;
  return {
    write(text) {
      if (closed) return;
      const bytes = typeof text === 'string' ? Buffer.from(text) : text;
      let done = 0;
      while (done < bytes.length) {
        try {
          done += writeSync(fd, bytes, done, bytes.length - done);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPIPE') {
            closed = true;
            return;
          }
          // A descriptor someone else made non-blocking: wait for room, as a blocking write would.
          if (code !== 'EAGAIN') throw err;
          Atomics.wait(pause, 0, 0, 5);
        }
      }
    },
  };
}
