/**
 * NBD servers for the tests: qemu-nbd (Debian qemu-utils) and nbdkit
 * (Debian nbdkit: the memory plugin, the error and delay filters), on unix
 * sockets in a temporary directory or on a free 127.0.0.1 port, killed by
 * `stopAll()`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;
}

/** True when qemu-nbd is on PATH. */
export const hasQemuNbd = has('qemu-nbd');
/** True when nbdkit is on PATH. */
export const hasNbdkit = has('nbdkit');

/** Skips (loudly) without `cmd`; under CI=true a missing server fails instead. */
export function requireServer(t: TestContext, cmd: 'qemu-nbd' | 'nbdkit'): boolean {
  if (cmd === 'qemu-nbd' ? hasQemuNbd : hasNbdkit) return true;
  if (process.env['CI'] === 'true') throw new Error(`${cmd} not found on PATH, but CI=true requires the NBD tests to run`);
  process.stderr.write(`\n*** ${cmd} not found: NBD tests against it are SKIPPED (install ${cmd === 'nbdkit' ? 'nbdkit' : 'qemu-utils'}) ***\n\n`);
  t.skip(`${cmd} not installed`);
  return false;
}

const pidFiles: string[] = [];

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released for the server). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

function started(pidFile: string, cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  pidFiles.push(pidFile);
}

/**
 * Serves `image` with qemu-nbd (daemonised, `--persistent`) on a unix
 * socket in `dir`, or on a TCP port with `port`; `shared` clients at once
 * (qemu-nbd's default is one). Returns the URI.
 */
export function qemuNbd(dir: string, id: string, image: string, o: { format: string; exportName: string; readOnly?: boolean; port?: number; shared?: number }): string {
  const pidFile = join(dir, `${id}.pid`);
  const socket = join(dir, `${id}.sock`);
  const where = o.port === undefined ? [`--socket=${socket}`] : ['--bind=127.0.0.1', `--port=${o.port}`];
  started(pidFile, 'qemu-nbd', ['-f', o.format, ...(o.readOnly ? ['-r'] : []), ...(o.shared ? [`--shared=${o.shared}`] : []), ...where, '-x', o.exportName, '--persistent', '--fork', `--pid-file=${pidFile}`, image]);
  const exp = o.exportName === '' ? '' : `/${o.exportName}`;
  return o.port === undefined ? `nbd+unix://${exp}?socket=${socket}` : `nbd://127.0.0.1:${o.port}${exp}`;
}

/** Serves a raw `image` as export `disk` with qemu-nbd over TLS (X.509 files in `pki`, client certificates required) on 127.0.0.1:`port`. */
export function qemuNbdTls(dir: string, image: string, pki: string, port: number): void {
  const pidFile = join(dir, `tls-${port}.pid`);
  const creds = `tls-creds-x509,id=tls0,dir=${pki},endpoint=server`;
  started(pidFile, 'qemu-nbd', ['-f', 'raw', '-r', '--object', creds, '--tls-creds=tls0', '--bind=127.0.0.1', `--port=${port}`, '-x', 'disk', '--persistent', '--fork', `--pid-file=${pidFile}`, image]);
}

/** Serves an nbdkit plugin (with filters and parameters) on a unix socket in `dir`; returns the URI of its export. */
export function nbdkit(dir: string, id: string, args: readonly string[]): string {
  const pidFile = join(dir, `${id}.pid`);
  const socket = join(dir, `${id}.sock`);
  // nbdkit forks once the socket listens, and writes the pid file then.
  started(pidFile, 'nbdkit', ['-U', socket, '-P', pidFile, ...args]);
  return `nbd+unix:///?socket=${socket}`;
}

/** Kills every server started here. */
export function stopAll(): void {
  for (const f of pidFiles.splice(0)) {
    if (!existsSync(f)) continue;
    const pid = Number(readFileSync(f, 'utf8').trim());
    try {
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
