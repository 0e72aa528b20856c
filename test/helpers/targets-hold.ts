/**
 * Another process using an image, as an import service meets it: qemu-io
 * writing it, or qemu-nbd serving it. Ready once qemu-img meets its locks
 * (polled, so the tests wait no fixed time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

import { qemuImg } from './qemu.js';

/** A process holding an image open for writing until {@link Holder.release}. */
export interface Holder {
  readonly child: ChildProcess;
  release(): Promise<void>;
}

const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

async function stop(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const exited = once(child, 'exit');
  child.kill();
  await exited;
}

/**
 * Starts `command` and waits until qemu-img, opening `file` as convert opens
 * a source (sharing no writer, which even a raw file's writer refuses),
 * meets its locks. That probe's own locks can make a holder that is just
 * opening the file fail: such a holder is started again.
 */
async function hold(command: string, args: readonly string[], file: string, cwd: string): Promise<Holder> {
  const giveUp = Date.now() + 60_000; // a hang guard, not a timing assertion
  let stderr = '';
  for (;;) {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (stderr = d.toString()));
    await once(child, 'spawn');
    while (running(child)) {
      if (/lock/.test(qemuImg(['convert', '-n', '-O', 'raw', file, '/dev/null'], { cwd }).stderr)) return { child, release: () => stop(child) };
      if (Date.now() > giveUp) {
        await stop(child);
        throw new Error(`${command} has not locked ${file} after a minute`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (Date.now() > giveUp) throw new Error(`${command} could not hold ${file}: ${stderr}`);
  }
}

/** qemu-io with `file` open for writing. */
export function holdWithQemuIo(file: string, cwd: string, format = 'qcow2'): Promise<Holder> {
  return hold('qemu-io', ['-f', format, '-c', 'sleep 600000', file], file, cwd);
}

/** qemu-nbd serving `file` (writable) on a unix socket in `cwd`. */
export function serveWithQemuNbd(file: string, cwd: string, format = 'qcow2'): Promise<Holder> {
  return hold('qemu-nbd', ['-f', format, '--persistent', `--socket=${join(cwd, `${file}.sock`)}`, file], file, cwd);
}
