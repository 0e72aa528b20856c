/**
 * Benchmarks vdisk against qemu-img in the same run: each case alternates
 * the two tools, syncs and removes old outputs (untimed) before every timed
 * run, and reports the fastest and the median run of each, their ratio, and
 * vdisk's peak RSS. Workloads come from ../shared/bench/mkworkload.py.
 * Converts also show vdisk's time without its start-up (the median
 * convert less the median `vdisk info` of a tiny image, measured in the
 * same run), and each case the machine's load average when it ended: the
 * machine is shared.
 *
 * Usage: npm run bench [-- --size-mib N --runs N --only TEXT[,TEXT...] --work DIR --bin VDISK_JS --skip-codec --net-mib N]
 * (then runs bench/codec.ts with the same --runs and --bin)
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import os from 'node:os';
import { startupRows } from './cases-startup.js';
import { netRows } from './cases-net.js';
import { prepare, timed } from './timing.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const workAt = process.argv.indexOf('--work');
const WORK = workAt >= 0 ? (process.argv[workAt + 1] as string) : join(ROOT, 'bench', 'work');
const binAt = process.argv.indexOf('--bin');
/** The CLI measured: this tree's build, or another build's (`--bin`, to compare engines in one run). */
const BIN = binAt >= 0 ? (process.argv[binAt + 1] as string) : join(ROOT, 'build', 'src', 'cli', 'vdisk.cjs');
const MKWORKLOAD = join(ROOT, '..', 'shared', 'bench', 'mkworkload.py');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const SIZE_MIB = arg('size-mib', 2048);
const RUNS = arg('runs', 5);
const onlyAt = process.argv.indexOf('--only');
/** Cases whose name contains one of these (comma-separated; `=NAME` matches the whole name). */
const ONLY = onlyAt >= 0 ? process.argv[onlyAt + 1]?.split(',') : undefined;

/** A convert case: the same arguments for both tools, output to out.img. */
function convertCase(name: string, args: string[]): Case {
  return { name: `convert ${name}`, vdisk: ['convert', ...args, 'out.img'], qemu: ['convert', ...args, 'out.img'], output: 'out.img' };
}

interface Case {
  readonly name: string;
  readonly vdisk: string[];
  readonly qemu: string[];
  readonly output?: string;
  /** vdisk's stdout goes to /dev/null (a streamed image). */
  readonly toDevNull?: boolean;
}

/** vdisk streams the image to /dev/null (`convert … -`); qemu-img, which cannot, writes the file. */
function streamCase(name: string, args: string[]): Case {
  return { name: `stream ${name} to /dev/null (qemu-img: to a file)`, vdisk: ['convert', ...args, '-'], qemu: ['convert', ...args, 'out.img'], output: 'out.img', toDevNull: true };
}

/** vdisk's run of a case: through sh when its stdout goes to /dev/null. */
function vdiskRun(c: Case): { seconds: number; rssKiB: number } {
  if (!c.toDevNull) return timed(WORK, process.execPath, [BIN, ...c.vdisk]);
  const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
  return timed(WORK, 'sh', ['-c', `exec ${[process.execPath, BIN, ...c.vdisk].map(quote).join(' ')} > /dev/null`]);
}

/** The issues' metadata workload: a 4 TiB qcow2 with 4000 scattered 64 KiB clusters, and a copy of it. */
function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: WORK, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed`);
}

function makeHuge(): void {
  if (existsSync(join(WORK, 'huge-copy.qcow2'))) return;
  run('qemu-img', ['create', '-q', '-f', 'qcow2', 'huge.qcow2', '4T']);
  let x = 12345;
  const clusters = (4 * 2 ** 40) / 65536;
  const cmds: string[] = [];
  for (let i = 0; i < 4000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const c = Math.floor((x / 2 ** 32) * clusters);
    cmds.push('-c', `write -P ${(i % 250) + 1} ${c * 65536} 64k`);
  }
  run('qemu-io', ['-f', 'qcow2', ...cmds, 'huge.qcow2']);
  run('cp', ['--sparse=always', 'huge.qcow2', 'huge-copy.qcow2']);
}

/**
 * A fragmented image: 4 GiB, every other 64 KiB cluster holding 4 KiB of data (65,536 map entries). The cost
 * of the metadata commands then follows the number of runs, not the tables; qemu-img's convert makes it.
 */
function makeFragmented(): void {
  if (existsSync(join(WORK, 'frag.qcow2'))) return;
  const fd = openSync(join(WORK, 'frag.raw'), 'w');
  try {
    ftruncateSync(fd, 4 * 2 ** 30);
    const data = Buffer.alloc(4096, 0x5a);
    for (let c = 0; c < (4 * 2 ** 30) / 65536; c += 2) writeSync(fd, data, 0, data.length, c * 65536);
  } finally {
    closeSync(fd);
  }
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', 'frag.raw', 'frag.qcow2']);
  rmSync(join(WORK, 'frag.raw'));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  if (!existsSync(join(WORK, 'mixed.raw'))) {
    const r = spawnSync('python3', [MKWORKLOAD, WORK, '--size-mib', String(SIZE_MIB)], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('mkworkload.py failed');
  }
  const cases: Case[] = [
    { name: 'check huge.qcow2 (4 TiB, 4000 clusters)', vdisk: ['check', 'huge.qcow2'], qemu: ['check', 'huge.qcow2'] },
    { name: 'map huge.qcow2', vdisk: ['map', '--output=json', 'huge.qcow2'], qemu: ['map', '--output=json', 'huge.qcow2'] },
    { name: 'compare huge.qcow2 huge-copy.qcow2', vdisk: ['compare', 'huge.qcow2', 'huge-copy.qcow2'], qemu: ['compare', 'huge.qcow2', 'huge-copy.qcow2'] },
    { name: 'measure -O qcow2 huge.qcow2', vdisk: ['measure', '--output=json', '-O', 'qcow2', 'huge.qcow2'], qemu: ['measure', '--output=json', '-O', 'qcow2', 'huge.qcow2'] },
    convertCase('raw → qcow2', ['-f', 'raw', '-O', 'qcow2', 'mixed.raw']),
    convertCase('qcow2 → raw', ['-f', 'qcow2', '-O', 'raw', 'mixed.qcow2']),
    convertCase('3-layer chain → qcow2', ['-O', 'qcow2', 'chain-top.qcow2']),
    convertCase('raw → raw', ['-f', 'raw', '-O', 'raw', 'mixed.raw']),
    { ...convertCase('raw → qcow2, vdisk -t unsafe (qemu-img\'s default)', ['-f', 'raw', '-O', 'qcow2', 'mixed.raw']), vdisk: ['convert', '-t', 'unsafe', '-f', 'raw', '-O', 'qcow2', 'mixed.raw', 'out.img'] },
    { ...convertCase('3-layer chain → qcow2, vdisk -t unsafe', ['-O', 'qcow2', 'chain-top.qcow2']), vdisk: ['convert', '-t', 'unsafe', '-O', 'qcow2', 'chain-top.qcow2', 'out.img'] },
    { ...convertCase('qcow2 → raw, vdisk -t unsafe', ['-f', 'qcow2', '-O', 'raw', 'mixed.qcow2']), vdisk: ['convert', '-t', 'unsafe', '-f', 'qcow2', '-O', 'raw', 'mixed.qcow2', 'out.img'] },
    { ...convertCase('raw → raw, vdisk -t unsafe', ['-f', 'raw', '-O', 'raw', 'mixed.raw']), vdisk: ['convert', '-t', 'unsafe', '-f', 'raw', '-O', 'raw', 'mixed.raw', 'out.img'] },
    // Like for like on safety: both flush the target before exiting.
    { ...convertCase('raw → qcow2, both flushing (qemu-img -t writeback)', ['-f', 'raw', '-O', 'qcow2', 'mixed.raw']), qemu: ['convert', '-t', 'writeback', '-f', 'raw', '-O', 'qcow2', 'mixed.raw', 'out.img'] },
    convertCase('raw → qcow2 -c', ['-c', '-f', 'raw', '-O', 'qcow2', 'mixed.raw']),
    { ...convertCase('raw → qcow2 -c (qemu-img with -W)', ['-c', '-f', 'raw', '-O', 'qcow2', 'mixed.raw']), qemu: ['convert', '-W', '-c', '-f', 'raw', '-O', 'qcow2', 'mixed.raw', 'out.img'] },
    streamCase('raw → qcow2', ['-f', 'raw', '-O', 'qcow2', 'mixed.raw']),
    streamCase('raw → qcow2 -c', ['-c', '-f', 'raw', '-O', 'qcow2', 'mixed.raw']),
    { name: 'info mixed.qcow2', vdisk: ['info', '--output=json', 'mixed.qcow2'], qemu: ['info', '--output=json', 'mixed.qcow2'] },
    { name: 'map chain-top.qcow2', vdisk: ['map', '--output=json', 'chain-top.qcow2'], qemu: ['map', '--output=json', 'chain-top.qcow2'] },
    { name: 'map frag.qcow2 (65,536 runs)', vdisk: ['map', '--output=json', 'frag.qcow2'], qemu: ['map', '--output=json', 'frag.qcow2'] },
    { name: 'measure -O qcow2 frag.qcow2 (65,536 runs)', vdisk: ['measure', '--output=json', '-O', 'qcow2', 'frag.qcow2'], qemu: ['measure', '--output=json', '-O', 'qcow2', 'frag.qcow2'] },
    { name: 'compare mixed.qcow2 mixed.raw', vdisk: ['compare', 'mixed.qcow2', 'mixed.raw'], qemu: ['compare', 'mixed.qcow2', 'mixed.raw'] },
  ].filter((c) => ONLY === undefined || ONLY.some((o) => (o.startsWith('=') ? c.name === o.slice(1) : c.name.includes(o))));
  if (cases.some((c) => c.name.includes('huge'))) makeHuge();
  if (cases.some((c) => c.name.includes('frag'))) makeFragmented();
  // vdisk's start-up, to show what a convert costs without it.
  run('qemu-img', ['create', '-q', '-f', 'qcow2', 'tiny.qcow2', '1M']);
  const startup = median(Array.from({ length: RUNS }, () => timed(WORK, process.execPath, [BIN, 'info', 'tiny.qcow2']).seconds));
  const rows: string[] = [
    '| case | vdisk min / median (s) | qemu-img min / median (s) | ratio median (fastest) | vdisk without start-up (median) | vdisk peak RSS | load |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const c of cases) {
    const ours: number[] = [];
    const theirs: number[] = [];
    let rss = 0;
    for (let i = 0; i < RUNS; i++) {
      prepare(WORK, c.output);
      const v = vdiskRun(c);
      ours.push(v.seconds);
      rss = Math.max(rss, v.rssKiB);
      prepare(WORK, c.output);
      theirs.push(timed(WORK, 'qemu-img', c.qemu).seconds);
    }
    prepare(WORK, c.output);
    const engine = c.output ? `${(median(ours) - startup).toFixed(3)} s (${((median(ours) - startup) / median(theirs)).toFixed(2)})` : '';
    rows.push(`| ${c.name} | ${Math.min(...ours).toFixed(3)} / ${median(ours).toFixed(3)} | ${Math.min(...theirs).toFixed(3)} / ${median(theirs).toFixed(3)} | ${(median(ours) / median(theirs)).toFixed(2)} (${(Math.min(...ours) / Math.min(...theirs)).toFixed(2)}) | ${engine} | ${(rss / 1024).toFixed(0)} MiB | ${(os.loadavg()[0] ?? 0).toFixed(1)} |`);
  }
  rows.push(...startupRows(WORK, BIN, RUNS, ONLY));
  rows.push(...(await netRows(WORK, BIN, RUNS, ONLY, startup, arg('net-mib', 1024))));
  console.log(`vdisk start-up (median \`vdisk info\` of a 1 MiB qcow2): ${startup.toFixed(3)} s`);
  console.log(`Workload: ${SIZE_MIB} MiB mixed.raw (../shared/bench/mkworkload.py), ${RUNS} alternating runs per tool, \`sync\` and old output removed before each run`);
  console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}\n`);
  console.log(rows.join('\n'));
  // The compressed-data cases (bench/codec.ts) on their own, smaller workload; `--skip-codec` leaves them out.
  if (!process.argv.includes('--skip-codec')) {
    const pass = ['--runs', String(RUNS), ...(binAt >= 0 ? ['--bin', BIN] : [])];
    spawnSync(process.execPath, [join(ROOT, 'build', 'bench', 'codec.js'), ...pass], { stdio: 'inherit' });
  }
}

await main();
