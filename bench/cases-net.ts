/**
 * Network cases: `convert -O raw` from the same image served by a local
 * nginx (HTTP) and by qemu-nbd (a unix socket), vdisk against qemu-img
 * reading the same URL or export, alternating, fastest and median of each.
 * The image is a 32 MiB qcow2 of the mixed workload's first 32 MiB:
 * qemu-img's curl driver reads one small range at a time, so the full
 * workload would take it many minutes (128 MiB took it over 100 s here). Skipped (with a line saying so)
 * when nginx, qemu-nbd or qemu's curl driver is missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NGINX_BIN, startNginx } from '../test/helpers/net-http-nginx.js';
import { prepare, timed } from './timing.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const CURL = '/usr/lib/x86_64-linux-gnu/qemu/block-curl.so';

function ok(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed`);
}

/** Rows for bench/run.ts's table; `bin` is run.ts's vdisk.js. */
export async function netRows(work: string, bin: string, runs: number, only: readonly string[] | undefined): Promise<string[]> {
  const names = ['net: convert -O raw from http:// (nginx)', 'net: convert -O raw from nbd+unix:// (qemu-nbd)'];
  if (only !== undefined && !names.some((n) => only.some((o) => n.includes(o)))) return [];
  if (!existsSync(NGINX_BIN) || !existsSync(CURL)) return [`| ${names[0]} | skipped: nginx-light or qemu-block-extra missing | | | | | |`];
  const image = 'net-32m.qcow2';
  if (!existsSync(join(work, image))) {
    ok('qemu-img', ['create', '-q', '-f', 'raw', 'net-32m.raw', '32M'], work);
    ok('dd', ['if=mixed.raw', 'of=net-32m.raw', 'bs=1M', 'count=32', 'conv=notrunc,sparse', 'status=none'], work);
    ok('qemu-img', ['convert', '-O', 'qcow2', 'net-32m.raw', image], work);
  }
  const scratch = mkdtempSync(join(tmpdir(), 'vdisk-bench-net-'));
  const nginx = await startNginx(work, scratch);
  const sock = join(scratch, 'nbd.sock');
  const nbd = spawn('qemu-nbd', ['-r', '-f', 'qcow2', '-k', sock, '-x', 'disk', '--persistent', '--shared=4', join(work, image)], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const rows: string[] = [];
  try {
    const sources = [nginx.url(image), `nbd+unix:///disk?socket=${sock}`];
    names.forEach((name, k) => {
      if (only !== undefined && !only.some((o) => name.includes(o))) return;
      const args = ['convert', '-O', 'raw', sources[k]!, 'out.img'];
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < runs; i++) {
        prepare(work, 'out.img');
        ours.push(timed(work, process.execPath, [bin, 'convert', '-t', 'unsafe', ...args.slice(1)]).seconds);
        prepare(work, 'out.img');
        theirs.push(timed(work, 'qemu-img', args).seconds);
      }
      prepare(work, 'out.img');
      rows.push(`| ${name}, vdisk -t unsafe | ${Math.min(...ours).toFixed(3)} / ${median(ours).toFixed(3)} | ${Math.min(...theirs).toFixed(3)} / ${median(theirs).toFixed(3)} | ${(Math.min(...ours) / Math.min(...theirs)).toFixed(2)} (fastest) | | | |`);
    });
  } finally {
    nbd.kill('SIGTERM');
    await nginx.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
