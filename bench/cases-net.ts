/**
 * Network cases: `convert -O raw` of the same qcow2 (the first
 * GiB of the mixed workload by default, `--net-mib N`) served by a local
 * nginx (HTTP) and by qemu-nbd (a unix socket, and TCP on 127.0.0.1), vdisk
 * against qemu-img reading the same URL or export, alternating, `sync` and
 * the old output removed before each run; fastest and median of each, and
 * the ratios of both. Skipped (with a row saying so) when nginx, qemu-nbd or
 * qemu's curl driver is missing.
 *
 * qemu-img reads HTTP with `-m 1`: with more requests in flight, qemu 7.2's
 * curl driver hangs for good against a fast server (strace: ppoll on no
 * socket, no timeout). Most likely it takes only the first finished
 * transfer off curl's queue per event (curl_multi_check_completion breaks
 * out of its loop), so when two finish together the second's state
 * stays in use, no socket or timer is left to call it again, and the
 * coroutines waiting for a free state are never woken. At `-m 1` it is
 * fast, so the server is not the cause (nginx logs each range as served in
 * under a millisecond; with keep-alive off qemu-img hangs all the same).
 * A run still going after RUN_TIMEOUT_S fails its row instead of stalling
 * the bench.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NGINX_BIN, freePort, startNginx, type Nginx } from '../test/helpers/net-http-nginx.js';
import { prepare, timed } from './timing.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const CURL = '/usr/lib/x86_64-linux-gnu/qemu/block-curl.so';
const RUN_TIMEOUT_S = 120;
const MiB = 1024 * 1024;

/** One network case: the source both tools read and qemu-img's extra options. */
interface NetCase {
  readonly name: string;
  readonly source: string;
  readonly qemuOptions: readonly string[];
  /** The server's byte count, where it keeps one (nginx). */
  readonly server?: Nginx | undefined;
}

function ok(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed`);
}

/** `net-<N>m.qcow2`, the first N MiB of mixed.raw (built once, kept with the workload). */
function image(work: string, mib: number): string {
  const name = `net-${mib}m.qcow2`;
  if (existsSync(join(work, name))) return name;
  const raw = `net-${mib}m.raw`;
  ok('qemu-img', ['create', '-q', '-f', 'raw', raw, `${mib}M`], work);
  ok('dd', ['if=mixed.raw', `of=${raw}`, 'bs=1M', `count=${mib}`, 'conv=notrunc,sparse', 'status=none'], work);
  ok('qemu-img', ['convert', '-O', 'qcow2', raw, name], work);
  rmSync(join(work, raw), { force: true });
  return name;
}

/** Waits until `ready()` holds or the server exits (then throws). */
async function until(ready: () => boolean, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 200 && !ready(); i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with status ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready()) throw new Error(`${what} did not start`);
}

/** A read-only qemu-nbd export `disk` of `file` (qcow2), on a unix socket or a TCP port. */
async function qemuNbd(file: string, at: { socket: string } | { port: number }): Promise<ChildProcess> {
  const where = 'socket' in at ? ['-k', at.socket] : ['-b', '127.0.0.1', '-p', String(at.port)];
  const child = spawn('qemu-nbd', ['-r', '-f', 'qcow2', ...where, '-x', 'disk', '--persistent', '--shared=8', file], { stdio: 'ignore' });
  const ready = 'socket' in at ? () => existsSync(at.socket) : () => spawnSync('qemu-img', ['info', `nbd://127.0.0.1:${at.port}/disk`], { stdio: 'ignore' }).status === 0;
  await until(ready, child, 'qemu-nbd');
  return child;
}

/** Runs one case `runs` times per tool, alternating; its table row. */
function measure(work: string, bin: string, runs: number, startup: number, c: NetCase): string {
  const ours: number[] = [];
  const theirs: number[] = [];
  const bytes = { vdisk: 0, qemu: 0 };
  let rss = 0;
  for (let i = 0; i < runs; i++) {
    prepare(work, 'out.img');
    c.server?.reset();
    const v = timed(work, process.execPath, [bin, 'convert', '-t', 'unsafe', '-O', 'raw', c.source, 'out.img'], RUN_TIMEOUT_S);
    bytes.vdisk = c.server?.bytesSent() ?? 0;
    ours.push(v.seconds);
    rss = Math.max(rss, v.rssKiB);
    prepare(work, 'out.img');
    c.server?.reset();
    theirs.push(timed(work, 'qemu-img', ['convert', ...c.qemuOptions, '-O', 'raw', c.source, 'out.img'], RUN_TIMEOUT_S).seconds);
    bytes.qemu = c.server?.bytesSent() ?? 0;
  }
  prepare(work, 'out.img');
  const sent = c.server ? `; HTTP bytes: vdisk ${(bytes.vdisk / MiB).toFixed(1)} MiB, qemu-img ${(bytes.qemu / MiB).toFixed(1)} MiB` : '';
  const [a, b] = [median(ours), median(theirs)];
  const ratios = `${(a / b).toFixed(2)} (fastest ${(Math.min(...ours) / Math.min(...theirs)).toFixed(2)})`;
  return `| ${c.name}${sent} | ${Math.min(...ours).toFixed(3)} / ${a.toFixed(3)} | ${Math.min(...theirs).toFixed(3)} / ${b.toFixed(3)} | ${ratios} | ${(a - startup).toFixed(3)} s (${((a - startup) / b).toFixed(2)}) | ${(rss / 1024).toFixed(0)} MiB | ${(os.loadavg()[0] ?? 0).toFixed(1)} |`;
}

/**
 * Rows for bench/run.ts's table; `bin` is run.ts's vdisk, `startup` its
 * median start-up, `mib` the image's size (capped at the workload's).
 */
export async function netRows(work: string, bin: string, runs: number, only: readonly string[] | undefined, startup: number, mib = 1024): Promise<string[]> {
  const size = Math.min(mib, Math.floor(statSync(join(work, 'mixed.raw')).size / MiB));
  const label = (what: string): string => `net: convert -O raw ${size} MiB qcow2 from ${what}, vdisk -t unsafe`;
  const wanted = (name: string): boolean => only === undefined || only.some((o) => (o.startsWith('=') ? name === o.slice(1) : name.includes(o)));
  const kinds = ['http:// (nginx)', 'nbd+unix:// (qemu-nbd)', 'nbd:// TCP (qemu-nbd)'];
  if (!kinds.some((k) => wanted(label(k)))) return [];
  const file = image(work, size);
  const scratch = mkdtempSync(join(tmpdir(), 'vdisk-bench-net-'));
  const servers: ChildProcess[] = [];
  let nginx: Nginx | undefined;
  const rows: string[] = [];
  try {
    const cases: NetCase[] = [];
    const [http, unix, tcp] = kinds.map((k) => wanted(label(k)));
    if (http && (!existsSync(NGINX_BIN) || !existsSync(CURL))) rows.push(`| ${label(kinds[0] as string)} | skipped: nginx-light or qemu-block-extra missing | | | | | |`);
    else if (http) {
      nginx = await startNginx(work, scratch);
      cases.push({ name: `${label(kinds[0] as string)}, qemu-img -m 1 (its curl driver hangs with more)`, source: nginx.url(file), qemuOptions: ['-m', '1'], server: nginx });
    }
    const nbd = spawnSync('qemu-nbd', ['--version'], { stdio: 'ignore' }).status === 0;
    if ((unix || tcp) && !nbd) rows.push(`| ${label('nbd')} | skipped: qemu-nbd (qemu-utils) missing | | | | | |`);
    if (unix && nbd) {
      const sock = join(scratch, 'nbd.sock');
      servers.push(await qemuNbd(join(work, file), { socket: sock }));
      cases.push({ name: label(kinds[1] as string), source: `nbd+unix:///disk?socket=${sock}`, qemuOptions: [] });
    }
    if (tcp && nbd) {
      const port = await freePort();
      servers.push(await qemuNbd(join(work, file), { port }));
      cases.push({ name: label(kinds[2] as string), source: `nbd://127.0.0.1:${port}/disk`, qemuOptions: [] });
    }
    for (const c of cases) {
      try {
        rows.push(measure(work, bin, runs, startup, c));
      } catch (err) {
        rows.push(`| ${c.name} | failed: ${(err as Error).message} | | | | | |`);
      }
    }
  } finally {
    for (const s of servers) s.kill('SIGTERM');
    await nginx?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
