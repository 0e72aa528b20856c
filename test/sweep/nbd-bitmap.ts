/**
 * A persistent bitmap's contents, read independently of both tools' own
 * bitmap code paths: qemu-nbd exports the image with the bitmap (-B), and
 * `qemu-img map` over NBD with x-dirty-bitmap reports the dirty ranges
 * (they show as not present). qemu-nbd runs with --fork and no -t, so it
 * exits when map disconnects; its pid file lets a stuck one be killed.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

import { run } from './proc.js';

let counter = 0;

/** The dirty ranges of `bitmap` in `dir/file` as "start+length" lines, or the error qemu printed. */
export async function dirtyRanges(dir: string, file: string, format: string, bitmap: string): Promise<string> {
  const id = `${process.pid}-${counter++}`;
  const sock = join(tmpdir(), `vdisk-sweep-${id}.sock`);
  const pidFile = join(tmpdir(), `vdisk-sweep-${id}.pid`);
  try {
    const srv = await run('qemu-nbd', ['--fork', `--pid-file=${pidFile}`, '-r', '-k', sock, '-B', bitmap, '-f', format, file], { cwd: dir, timeoutMs: 20_000 });
    if (srv.status !== 0) return `qemu-nbd failed (${srv.status}): ${srv.stderr.trim()}`;
    const name = bitmap.replaceAll(',', ',,');
    const opts = `driver=nbd,server.type=unix,server.path=${sock},x-dirty-bitmap=qemu:dirty-bitmap:${name}`;
    const map = await run('qemu-img', ['map', '--output=json', '--image-opts', opts], { timeoutMs: 20_000 });
    if (map.status !== 0) return `map over nbd failed (${map.status}): ${map.stderr.trim()}`;
    const ranges = JSON.parse(map.stdout) as { start: number; length: number; present: boolean }[];
    return ranges.filter((r) => !r.present).map((r) => `${r.start}+${r.length}`).join('\n') || '(clean)';
  } finally {
    stopServer(pidFile);
    rmSync(sock, { force: true });
    rmSync(pidFile, { force: true });
  }
}

/** Kills the qemu-nbd this module started, if it is still there (it normally exits with its client). */
function stopServer(pidFile: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    // the pid file may outlive the server: only a qemu-nbd with that pid is ours
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'qemu-nbd') return;
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}
