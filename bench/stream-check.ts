/**
 * The streaming acceptance run, on big images (too slow for `npm test`):
 * - every streamable format and option, from a mixed source: the bytes
 *   `vdisk convert … -` writes, captured by `cat > f`, are as many as
 *   `measure --exact` says; f passes `qemu-img check` (where the format has
 *   one) and `qemu-img compare` with the source;
 * - qemu-made images piped into `vdisk convert -f FMT - out.raw` give the
 *   source bytes, with vdisk's peak RSS;
 * - a 3 GiB stream read at 400 MiB/s: vdisk's peak RSS.
 *
 * Usage: npm run pretest && node build/bench/stream-check.js [--size-mib N (default 1024)] [--work DIR] [--only TEXT]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { timed } from './timing.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'build', 'src', 'cli', 'vdisk.js');
const MKWORKLOAD = resolve(ROOT, '..', 'shared', 'bench', 'mkworkload.py');
const at = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const SIZE_MIB = Number(at('--size-mib') ?? 1024);
const WORK = resolve(at('--work') ?? join(ROOT, 'bench', 'work-stream'));
const ONLY = at('--only');

const q = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
const sh = (cmd: string): { status: number | null; stdout: string; stderr: string } => spawnSync('sh', ['-c', cmd], { cwd: WORK, encoding: 'utf8', maxBuffer: 64 << 20 });
const vdisk = (args: string[]): string => [process.execPath, BIN, ...args].map(q).join(' ');

interface Row {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}
const rows: Row[] = [];

function outCase(label: string, format: string, args: string[], checkable: boolean): void {
  if (ONLY && !label.includes(ONLY)) return;
  rmSync(join(WORK, 'f'), { force: true });
  const m = sh(vdisk(['measure', '--exact', '--output=json', '-O', format, ...args, 'mixed.raw']));
  const exact = m.status === 0 ? (JSON.parse(m.stdout) as Record<string, number>)['exact-size'] : undefined;
  const run = timed(WORK, 'sh', ['-c', `${vdisk(['convert', '-O', format, ...args, 'mixed.raw', '-'])} | cat > f`]);
  const size = existsSync(join(WORK, 'f')) ? statSync(join(WORK, 'f')).size : -1;
  const check = checkable ? sh(`qemu-img check -f ${format} f`) : { status: 0, stdout: '', stderr: '' };
  const cmp = sh(`qemu-img compare -f raw -F ${format} mixed.raw f`);
  const ok = exact === size && check.status === 0 && cmp.status === 0;
  rows.push({ what: `out ${label}`, ok, detail: `${size} bytes, exact ${exact}, check ${check.status}, compare ${cmp.status}, ${run.seconds.toFixed(1)} s, RSS ${(run.rssKiB / 1024).toFixed(0)} MiB` });
}

function inCase(label: string, format: string, make: string[]): void {
  if (ONLY && !label.includes(ONLY)) return;
  rmSync(join(WORK, 'in.img'), { force: true });
  rmSync(join(WORK, 'out.raw'), { force: true });
  spawnSync('qemu-img', ['convert', '-f', 'raw', ...make, 'mixed.raw', 'in.img'], { cwd: WORK, stdio: 'inherit' });
  const run = timed(WORK, 'sh', ['-c', `cat in.img | ${vdisk(['convert', '-f', format, '-O', 'raw', '-', 'out.raw'])}`]);
  const cmp = sh('qemu-img compare -f raw -F raw mixed.raw out.raw');
  const rss = run.rssKiB / 1024;
  rows.push({ what: `in ${label}`, ok: cmp.status === 0 && rss <= 200, detail: `compare ${cmp.status}, ${run.seconds.toFixed(1)} s, RSS ${rss.toFixed(0)} MiB` });
}

/** A reader at 400 MiB/s: what vdisk holds while its reader is slower than it. */
function slowReader(): void {
  if (ONLY && !'slow'.includes(ONLY)) return;
  const big = join(WORK, 'big.raw');
  if (!existsSync(big)) sh(`qemu-img create -q -f raw big.raw 3G && qemu-io -f raw -c 'write -P 7 0 1G' -c 'write -P 9 2G 1G' big.raw`);
  const reader = `node -e "let n=0,t=Date.now();process.stdin.on('data',c=>{n+=c.length;const ahead=n/(400*1048576)*1000-(Date.now()-t);if(ahead>0){process.stdin.pause();setTimeout(()=>process.stdin.resume(),ahead)}})"`;
  const run = timed(WORK, 'sh', ['-c', `${vdisk(['convert', '-O', 'qcow2', 'big.raw', '-'])} | ${reader}`]);
  // ru_maxrss of the children is the larger of vdisk and the reader (a few tens of MiB).
  rows.push({ what: 'out 3 GiB qcow2 to a 400 MiB/s reader', ok: run.rssKiB / 1024 <= 200, detail: `${run.seconds.toFixed(1)} s, peak RSS ${(run.rssKiB / 1024).toFixed(0)} MiB` });
}

function main(): void {
  mkdirSync(WORK, { recursive: true });
  if (!existsSync(join(WORK, 'mixed.raw'))) {
    const r = spawnSync('python3', [MKWORKLOAD, WORK, '--size-mib', String(SIZE_MIB)], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('mkworkload.py failed');
  }
  outCase('raw', 'raw', [], false);
  for (const cs of ['512', '4k', '64k', '2M']) outCase(`qcow2 cluster_size=${cs}`, 'qcow2', ['-o', `cluster_size=${cs}`], true);
  outCase('qcow2 refcount_bits=1', 'qcow2', ['-o', 'refcount_bits=1'], true);
  outCase('qcow2 -c zlib', 'qcow2', ['-c'], true);
  outCase('qcow2 -c zstd', 'qcow2', ['-c', '-o', 'compression_type=zstd'], true);
  outCase('vpc fixed', 'vpc', ['-o', 'subformat=fixed'], false);
  outCase('vpc dynamic', 'vpc', ['-o', 'subformat=dynamic'], false);
  outCase('vhdx dynamic', 'vhdx', ['-o', 'subformat=dynamic'], true);
  outCase('vmdk streamOptimized', 'vmdk', ['-o', 'subformat=streamOptimized'], true);
  inCase('qcow2', 'qcow2', ['-O', 'qcow2']);
  inCase('qcow2 -c zlib', 'qcow2', ['-c', '-O', 'qcow2']);
  inCase('qcow2 -c zstd', 'qcow2', ['-c', '-O', 'qcow2', '-o', 'compression_type=zstd']);
  inCase('vmdk streamOptimized', 'vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']);
  inCase('vpc fixed', 'vpc', ['-O', 'vpc', '-o', 'subformat=fixed']);
  inCase('vpc dynamic', 'vpc', ['-O', 'vpc', '-o', 'subformat=dynamic']);
  slowReader();
  console.log(`Source: ${SIZE_MIB} MiB mixed.raw (../shared/bench/mkworkload.py)\n`);
  console.log('| case | ok | detail |\n|---|---|---|');
  for (const r of rows) console.log(`| ${r.what} | ${r.ok ? 'yes' : '**NO**'} | ${r.detail} |`);
  process.exitCode = rows.every((r) => r.ok) ? 0 : 1;
}

main();
