/**
 * Peak memory of a vdisk child process: the CLI runs under GNU time, whose
 * `%M` is the child's maximum resident set (getrusage, KiB). Deterministic,
 * unlike sampling /proc while it runs, and it still reports when the child
 * dies of an abort.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { VDISK_BIN } from './cli.js';

const TIME = '/usr/bin/time';

/** True when GNU time is installed (memory tests skip without it). */
export const hasTime = existsSync(TIME);

/** The bound every memory case must stay under. */
export const RSS_LIMIT_KIB = 200 * 1024;

/** What a measured run printed, returned and peaked at. */
export interface RssResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak resident set of the vdisk process, KiB. */
  readonly peakKiB: number;
}

/**
 * Runs `vdisk ...args` under GNU time. `pipeInto` (optional) is a shell
 * pipeline stage the CLI's stdout is piped into (e.g. `sleep 1; wc -c`),
 * so stdout is a real pipe drained at the consumer's pace; the status is
 * then vdisk's unless the consumer fails (pipefail). With `pipeStderr`,
 * stderr goes down the pipe instead and stdout is discarded.
 */
export function vdiskPeak(args: readonly string[], options: { cwd?: string; pipeInto?: string; pipeStderr?: boolean } = {}): RssResult {
  const scratch = mkdtempSync(join(tmpdir(), 'vdisk-rss-'));
  const out = join(scratch, 'rss');
  try {
    const cmd = [TIME, '-f', '%M', '-o', out, process.execPath, VDISK_BIN, ...args];
    const r = options.pipeInto === undefined
      ? spawnSync(cmd[0]!, cmd.slice(1), { cwd: options.cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 })
      : spawnSync('/bin/bash', ['-c', `set -o pipefail; "$@" ${options.pipeStderr ? '2>&1 >/dev/null ' : ''}| { ${options.pipeInto}; }`, 'bash', ...cmd], { cwd: options.cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
    if (r.error) throw r.error;
    const text = readFileSync(out, 'utf8').trim().split('\n');
    const peakKiB = Number(text[text.length - 1]);
    if (!Number.isFinite(peakKiB)) throw new Error(`GNU time wrote no peak RSS: ${text.join(' | ')}`);
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, peakKiB };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
