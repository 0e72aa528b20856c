/**
 * Start-up cases: a short command against Node's own start-up. `vdisk info`
 * on an empty 1 GiB qcow2 runs as the installed bin does (the executable,
 * through its #! line) alternately with `node -e 0`; the ratio is of the
 * fastest runs. Node parses every certificate of NODE_EXTRA_CA_CERTS before
 * any script runs, which can be most of its start-up (as in CI sandboxes),
 * so the ratio is also given with that variable unset.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Wall seconds of one run (output discarded). */
function wall(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Rows for bench/run.ts's table (the baseline column is `node -e 0`, not qemu-img); `bin` is run.ts's vdisk.js. */
export function startupRows(work: string, bin: string, runs: number, only: readonly string[] | undefined): string[] {
  // The installed bin is vdisk.cjs beside it (vdisk.js only imports it, through Node's ESM loader).
  const installed = join(dirname(bin), 'vdisk.cjs');
  const exe = existsSync(installed) ? installed : bin;
  const image = 'empty-1g.qcow2';
  if (!existsSync(join(work, image))) {
    const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G'], { cwd: work, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('qemu-img create failed');
  }
  const bare = { ...process.env };
  delete bare['NODE_EXTRA_CA_CERTS'];
  const cases = [
    { name: `startup: info ${image} vs node -e 0 (ratio of fastest)`, env: process.env },
    { name: `startup: info ${image} vs node -e 0, NODE_EXTRA_CA_CERTS unset (ratio of fastest)`, env: bare },
  ].filter((c) => only === undefined || only.some((o) => (o.startsWith('=') ? c.name === o.slice(1) : c.name.includes(o))));
  return cases.map((c) => {
    const ours: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < runs; i++) {
      node.push(wall(process.execPath, ['-e', '0'], work, c.env));
      ours.push(wall(exe, ['info', image], work, c.env));
    }
    const [a, b] = [Math.min(...ours), Math.min(...node)];
    return `| ${c.name} | ${a.toFixed(3)} / ${median(ours).toFixed(3)} | node ${b.toFixed(3)} / ${median(node).toFixed(3)} | ${(a / b).toFixed(2)} | – |`;
  });
}
