/**
 * Another process using an image, as an import service meets it: qemu-io
 * writing it, or qemu-nbd serving it. Ready once qemu-img sees its locks
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

/**
 * Waits until qemu-img meets the holder's locks. Opened as convert opens a
 * source (sharing no writer), which a raw file's writer also refuses.
 */
async function lockedByOther(file: string, cwd: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`the holder of ${file} exited (${child.exitCode}): ${stderrOf.get(child) ?? ''}`);
    if (/lock/.test(qemuImg(['convert', '-n', '-O', 'raw', file, '/dev/null'], { cwd }).stderr)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing took the locks of ${file}`);
}

/** What each holder printed, for the message when it could not start. */
const stderrOf = new WeakMap<ChildProcess, string>();

async function started(child: ChildProcess, file: string, cwd: string): Promise<Holder> {
  child.stderr?.on('data', (d: Buffer) => stderrOf.set(child, (stderrOf.get(child) ?? '') + d.toString()));
  const release = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill();
    await exited;
  };
  try {
    await lockedByOther(file, cwd, child);
  } catch (err) {
    await release();
    throw err;
  }
  return { child, release };
}

/** qemu-io with `file` open for writing. */
export function holdWithQemuIo(file: string, cwd: string, format = 'qcow2'): Promise<Holder> {
  const child = spawn('qemu-io', ['-f', format, '-c', 'sleep 60000', file], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  return started(child, file, cwd);
}

/** qemu-nbd serving `file` (writable) on a unix socket in `cwd`. */
export function serveWithQemuNbd(file: string, cwd: string, format = 'qcow2'): Promise<Holder> {
  const child = spawn('qemu-nbd', ['-f', format, '--persistent', `--socket=${join(cwd, `${file}.sock`)}`, file], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  return started(child, file, cwd);
}
