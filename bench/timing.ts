/** What every benchmark case does around a timed run (bench/run.ts, bench/codec.ts). */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs a command in `cwd`, returning wall seconds, the child's CPU seconds (user + system) and peak RSS (KiB).
 * With `timeoutS`, a command still running then is killed and the run fails (a hung client must not stall the bench).
 */
export function timed(cwd: string, cmd: string, args: string[], timeoutS?: number): { seconds: number; cpuSeconds: number; rssKiB: number } {
  // The timeout is a timer thread that kills the child, and the wait a blocking waitpid: Python's
  // subprocess.run(timeout=…) polls with sleeps of up to 50 ms, which rounded every timed run up
  // to a 50 ms tick (0.266, 0.316, 0.366 s …).
  const wrapper = [
    'import resource,subprocess,sys,threading,time',
    'late=[]',
    't=time.monotonic()',
    // the command's output is not read: map of a dense image prints megabytes
    'p=subprocess.Popen(sys.argv[2:],stdout=subprocess.DEVNULL)',
    'k=threading.Timer(float(sys.argv[1]), lambda: (late.append(1), p.kill())) if float(sys.argv[1]) else None',
    'k and k.start()',
    'rc=p.wait()',
    'd=time.monotonic()-t',
    'k and k.cancel()',
    'late and sys.exit(124)',
    'u=resource.getrusage(resource.RUSAGE_CHILDREN)',
    'print(d, u.ru_utime+u.ru_stime, u.ru_maxrss)',
    'sys.exit(rc)',
  ].join('\n');
  const r = spawnSync('python3', ['-c', wrapper, String(timeoutS ?? 0), cmd, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status === 124 && timeoutS) throw new Error(`${cmd} did not finish in ${timeoutS} s`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
  const [sec, cpu, rss] = r.stdout.trim().split(/\s+/).slice(-3).map(Number);
  return { seconds: sec ?? NaN, cpuSeconds: cpu ?? NaN, rssKiB: rss ?? NaN };
}

/** Removes the previous run's output (untimed) and syncs, so that every run starts alike. */
export function prepare(cwd: string, output: string | undefined): void {
  if (output) rmSync(join(cwd, output), { force: true });
  spawnSync('sync');
}
