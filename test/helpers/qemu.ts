/**
 * qemu-img as the oracle. Differential tests call `requireQemu(t)`: without
 * qemu-img they skip with a loud message, except under CI=true where a
 * missing qemu-img fails the test.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

function probe(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/** True when qemu-img is on PATH. */
export const hasQemu = probe('qemu-img');
/** True when qemu-io is on PATH. */
export const hasQemuIo = probe('qemu-io');

let warned = false;

/**
 * Skips the test (loudly) when qemu-img is missing; under CI=true it fails
 * instead, because CI must run the differential tests.
 * Returns true when the test may go on.
 */
export function requireQemu(t: TestContext): boolean {
  if (hasQemu && hasQemuIo) return true;
  if (process.env['CI'] === 'true') throw new Error('qemu-img/qemu-io not found on PATH, but CI=true requires the differential tests to run');
  if (!warned) {
    warned = true;
    process.stderr.write('\n*** qemu-img not found: differential tests against qemu-img are SKIPPED (install qemu-utils) ***\n\n');
  }
  t.skip('qemu-img not installed');
  return false;
}

/**
 * qemu's PBKDF2 calibration (luks and qcow2 `encrypt.format=luks` create) fails
 * with this message when the thread's CPU clock, read in whole milliseconds of
 * tick-sampled time, did not advance over its first round of 2^15 iterations
 * (a few ms): about one run in six here when idle, one in two or more under
 * load. Each run measures again; failing runs take milliseconds.
 */
export const PBKDF2_CALIBRATION_RUNS = 40;

/** True when a failed qemu-img run failed only because of that calibration (run it again). */
export const isPbkdf2CalibrationFlake = (stderr: string): boolean => stderr.includes('Unable to get accurate CPU usage');

/** Runs qemu-img; returns its result (never throws on a non-zero exit). */
export function qemuImg(args: readonly string[], options: { cwd?: string } = {}): SpawnSyncReturns<string> {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync('qemu-img', args, { encoding: 'utf8', cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
    if (r.status === 0 || attempt === PBKDF2_CALIBRATION_RUNS || !isPbkdf2CalibrationFlake(r.stderr)) return r;
  }
}

/** Runs qemu-img and throws with its stderr when it fails. */
export function qemuImgOk(args: readonly string[], options: { cwd?: string } = {}): string {
  const r = qemuImg(args, options);
  if (r.status !== 0) throw new Error(`qemu-img ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Runs qemu-io with `-c` commands on an image. */
export function qemuIo(image: string, commands: readonly string[], format?: string): SpawnSyncReturns<string> {
  const args = [...(format ? ['-f', format] : []), ...commands.flatMap((c) => ['-c', c]), image];
  const r = spawnSync('qemu-io', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`qemu-io ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tmpDir(prefix = 'vdisk-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
