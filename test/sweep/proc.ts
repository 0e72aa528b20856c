/**
 * Child processes for the sweep: async, with a timeout (a hang is a
 * difference, never a hung sweep), output captured as text.
 */
import { spawn } from 'node:child_process';

import { VDISK_BIN } from '../helpers/cli.js';
import { isPbkdf2CalibrationFlake, PBKDF2_CALIBRATION_RUNS } from '../helpers/qemu.js';

/** What a child printed and how it ended. */
export interface ProcResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the child was killed for running past its timeout. */
  readonly timedOut: boolean;
}

export interface ProcOptions {
  readonly cwd?: string | undefined;
  readonly timeoutMs?: number | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** Output beyond this is cut: a runaway child must not exhaust memory. */
const MAX_OUTPUT = 4 * 1024 * 1024;

/** A fixed environment, so messages, dates and locale match between the tools. */
export const SWEEP_ENV: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };

/**
 * Runs `cmd args` and resolves when it exits (status -1 when killed by a
 * signal). qemu-img is run again when only its PBKDF2 calibration failed
 * (see helpers/qemu.ts): that is not a difference, nor a broken fixture.
 */
export async function run(cmd: string, args: readonly string[], options: ProcOptions = {}): Promise<ProcResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await runOnce(cmd, args, options);
    if (cmd !== 'qemu-img' || r.status === 0 || attempt === PBKDF2_CALIBRATION_RUNS || !isPbkdf2CalibrationFlake(r.stderr)) return r;
  }
}

function runOnce(cmd: string, args: readonly string[], options: ProcOptions): Promise<ProcResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? SWEEP_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (d: Buffer): void => {
      if (size < MAX_OUTPUT) into.push(d);
      size += d.length;
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    const finish = (status: number, extra = ''): void => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') + extra, timedOut });
    };
    child.on('error', (e) => finish(-2, `spawn failed: ${e.message}\n`));
    child.on('close', (code) => finish(code ?? -1));
  });
}

/** The tool names a case step can use. */
export type Tool = 'qemu-img' | 'vdisk' | 'qemu-io';

/** Runs one of the tools (vdisk: the compiled CLI under this Node). */
export function runTool(tool: Tool, args: readonly string[], options: ProcOptions = {}): Promise<ProcResult> {
  if (tool === 'vdisk') return run(process.execPath, [VDISK_BIN, ...args], options);
  return run(tool, args, options);
}
