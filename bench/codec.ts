/**
 * Compressed-data benchmarks: qemu-img-made zlib
 * and zstd qcow2 and streamOptimized VMDK converted to raw, and raw
 * converted with `-c` (zlib and zstd). Like run.ts, each case alternates
 * the two tools, removes the output and syncs (untimed) before every run,
 * and reports fastest and median of each, their ratios, the median CPU time
 * (user + system) of each and vdisk's peak RSS;
 * every vdisk output is then checked against the source with
 * `qemu-img compare` (and `qemu-img check` for qcow2).
 *
 * vdisk runs with `-t unsafe`, qemu-img convert's default target cache, so
 * neither tool flushes: the comparison is of the engines, not of the disk's
 * flush (which on some machines costs more than the decoding). `--durable`
 * runs vdisk with its own default (flush before the rename) instead.
 *
 * Usage: npm run pretest && node build/bench/codec.js [--size-mib N] [--runs N] [--work DIR] [--only TEXT] [--bin path/to/vdisk.js] [--durable]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { prepare, timed } from './timing.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = resolve(arg('bin') ?? join(ROOT, 'build', 'src', 'cli', 'vdisk.cjs'));
const MKWORKLOAD = join(ROOT, '..', 'shared', 'bench', 'mkworkload.py');

const SIZE_MIB = Number(arg('size-mib') ?? 768);
const RUNS = Number(arg('runs') ?? 5);
const WORK = resolve(arg('work') ?? join(ROOT, 'bench', 'work', `codec-${SIZE_MIB}`));
const ONLY = arg('only');
const DURABLE = process.argv.includes('--durable');
const CACHE = DURABLE ? [] : ['-t', 'unsafe'];

interface Case {
  readonly name: string;
  readonly args: string[];
  readonly output: string;
  /** The image the output must equal. */
  readonly source: string;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: WORK, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** mkworkload.py's mixed.raw and mixed-c.qcow2 (zlib), plus the zstd qcow2 and streamOptimized VMDK made from it by qemu-img. */
function makeInputs(): void {
  mkdirSync(WORK, { recursive: true });
  if (!existsSync(join(WORK, 'mixed-c.qcow2'))) {
    const r = spawnSync('python3', [MKWORKLOAD, WORK, '--size-mib', String(SIZE_MIB)], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('mkworkload.py failed');
  }
  if (!existsSync(join(WORK, 'mixed-zstd.qcow2'))) run('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', 'mixed.raw', 'mixed-zstd.qcow2']);
  if (!existsSync(join(WORK, 'mixed-stream.vmdk'))) run('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'mixed.raw', 'mixed-stream.vmdk']);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function verify(c: Case): void {
  if (c.output.endsWith('.qcow2')) run('qemu-img', ['check', '-q', c.output]);
  run('qemu-img', ['compare', '-q', c.source, c.output]);
}

function main(): void {
  makeInputs();
  const cases: Case[] = [
    { name: 'convert zlib qcow2 → raw', args: ['-O', 'raw', 'mixed-c.qcow2', 'out.raw'], output: 'out.raw', source: 'mixed-c.qcow2' },
    { name: 'convert zstd qcow2 → raw', args: ['-O', 'raw', 'mixed-zstd.qcow2', 'out.raw'], output: 'out.raw', source: 'mixed-zstd.qcow2' },
    { name: 'convert streamOptimized vmdk → raw', args: ['-O', 'raw', 'mixed-stream.vmdk', 'out.raw'], output: 'out.raw', source: 'mixed-stream.vmdk' },
    { name: 'convert -c -o compression_type=zstd raw → qcow2', args: ['-c', '-O', 'qcow2', '-o', 'compression_type=zstd', '-f', 'raw', 'mixed.raw', 'out.qcow2'], output: 'out.qcow2', source: 'mixed.raw' },
    { name: 'convert -c raw → qcow2 (zlib)', args: ['-c', '-O', 'qcow2', '-f', 'raw', 'mixed.raw', 'out.qcow2'], output: 'out.qcow2', source: 'mixed.raw' },
  ].filter((c) => ONLY === undefined || c.name.includes(ONLY));
  const rows = [
    '| case | vdisk min / median (s) | qemu-img min / median (s) | ratio min / median | CPU median, vdisk / qemu-img (s) | vdisk peak RSS |',
    '|---|---|---|---|---|---|',
  ];
  for (const c of cases) {
    const ours: number[] = [];
    const theirs: number[] = [];
    const cpu: [number[], number[]] = [[], []];
    let rss = 0;
    for (let i = 0; i < RUNS; i++) {
      prepare(WORK, c.output);
      const v = timed(WORK, process.execPath, [BIN, 'convert', ...CACHE, ...c.args]);
      ours.push(v.seconds);
      cpu[0].push(v.cpuSeconds);
      rss = Math.max(rss, v.rssKiB);
      if (i === 0) verify(c);
      prepare(WORK, c.output);
      const q = timed(WORK, 'qemu-img', ['convert', ...c.args]);
      theirs.push(q.seconds);
      cpu[1].push(q.cpuSeconds);
    }
    prepare(WORK, c.output);
    rmSync(join(WORK, c.output), { force: true });
    const row =
      `| ${c.name} | ${Math.min(...ours).toFixed(3)} / ${median(ours).toFixed(3)} | ${Math.min(...theirs).toFixed(3)} / ${median(theirs).toFixed(3)} | ` +
      `${(Math.min(...ours) / Math.min(...theirs)).toFixed(2)} / ${(median(ours) / median(theirs)).toFixed(2)} | ${median(cpu[0]).toFixed(2)} / ${median(cpu[1]).toFixed(2)} | ${(rss / 1024).toFixed(0)} MiB |`;
    rows.push(row);
    console.error(row);
  }
  console.log(`Workload: ${SIZE_MIB} MiB mixed.raw (../shared/bench/mkworkload.py) and qemu-img-made compressed images of it, ${RUNS} alternating runs per tool, \`sync\` and old output removed before each run; vdisk ${DURABLE ? 'flushing (its default)' : 'with -t unsafe (qemu-img convert\'s default: neither flushes)'}`);
  console.log(`Load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}; NODE_EXTRA_CA_CERTS ${process.env['NODE_EXTRA_CA_CERTS'] ? 'set' : 'unset'}`);
  console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}\n`);
  console.log(rows.join('\n'));
}

main();
