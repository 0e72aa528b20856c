/** What every benchmark case does around a timed run (bench/run.ts, bench/codec.ts). */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/** Runs a command in `cwd`, returning wall seconds and the child's peak RSS (KiB). */
export function timed(cwd: string, cmd: string, args: string[]): { seconds: number; rssKiB: number } {
  const wrapper = 'import resource,subprocess,sys,time; t=time.monotonic(); r=subprocess.run(sys.argv[1:]); ' +
    'd=time.monotonic()-t; print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)';
  const r = spawnSync('python3', ['-c', wrapper, cmd, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
  const [sec, rss] = r.stdout.trim().split(/\s+/).slice(-2).map(Number);
  return { seconds: sec ?? NaN, rssKiB: rss ?? NaN };
}

/** Removes the previous run's output (untimed) and syncs, so that every run starts alike. */
export function prepare(cwd: string, output: string | undefined): void {
  if (output) rmSync(join(cwd, output), { force: true });
  spawnSync('sync');
}
