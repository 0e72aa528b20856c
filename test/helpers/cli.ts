/** Runs the vdisk CLI as users do: a child process of the compiled bin. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of the compiled CLI entry (tests run from build/test/...). */
export const VDISK_BIN = fileURLToPath(new URL('../../src/cli/vdisk.js', import.meta.url));

/** What a CLI run printed and returned. */
export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vdisk ...args` in `cwd`. */
export function vdisk(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [VDISK_BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** qemu-img's stderr with `qemu-img:` turned into `vdisk:`, for line-by-line comparison. */
export function asVdisk(text: string): string {
  return text.replaceAll('qemu-img: ', 'vdisk: ').replaceAll("Try 'qemu-img --help'", "Try 'vdisk --help'");
}
