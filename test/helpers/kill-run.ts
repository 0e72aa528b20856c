/**
 * Kill-point scenarios for in-place commands: run the vdisk CLI once to the
 * end (counting its writes and syncs), then again on fresh copies, stopped
 * at seeded events by SIGKILL and by simulated power loss (kill-hook.ts).
 * After each stop qemu-img check must find no corruption (leaks are what
 * qemu's own crashes leave, so they pass) and the scenario's observation
 * must equal the state before or the state after the command.
 * In npm test each file runs a few scenarios at one seeded point per mode;
 * VDISK_CRASH_POINTS=N runs every scenario at N points per mode.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { VDISK_BIN } from './cli.js';
import { rng } from './fuzz.js';
import { qemuImg, qemuImgOk } from './qemu.js';

const HOOK = fileURLToPath(new URL('./kill-hook.js', import.meta.url));
const FULL = process.env['VDISK_CRASH_POINTS'] !== undefined;
/** Seeded points per kill mode. */
export const POINTS = FULL ? Number(process.env['VDISK_CRASH_POINTS']) : 1;

/** Every scenario under VDISK_CRASH_POINTS, else those whose names `quick` picks. */
export function bounded<T extends { readonly name: string }>(all: readonly T[], quick: (name: string) => boolean): T[] {
  return FULL ? [...all] : all.filter((s) => quick(s.name));
}

export type KillMode = 'kill' | 'powerloss';

interface Hooked {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Runs `vdisk args` in `cwd` under the kill hook. */
function hooked(args: readonly string[], cwd: string, env: Record<string, string>): Promise<Hooked> {
  return new Promise((resolve) => {
    // Without the native module writes need the explicit opt-out of image locking.
    const argv = [...args.slice(0, 1), '--no-lock', ...args.slice(1)];
    const child = spawn(process.execPath, ['--import', HOOK, VDISK_BIN, ...argv], { cwd, env: { ...process.env, VDISK_NO_NATIVE: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status, signal) => resolve({ status, signal, stderr }));
  });
}

/** `n` distinct seeded events in 1..total (all of them when there are fewer). */
export function killPoints(total: number, n: number, seed: number): number[] {
  if (total <= n) return Array.from({ length: total }, (_, i) => i + 1);
  const next = rng(seed);
  const out = new Set<number>();
  while (out.size < n) out.add(1 + Math.floor(next() * total));
  return [...out].sort((a, b) => a - b);
}

/** SHA-256 of an image's guest content (or of one internal snapshot's), read by qemu-img. */
export function contentHash(dir: string, file: string, format = 'qcow2', snapshot?: string): string {
  const out = join(dir, `.content-${process.pid}.raw`);
  try {
    qemuImgOk(['convert', '-U', '-f', format, ...(snapshot ? ['-l', `snapshot.name=${snapshot}`] : []), '-O', 'raw', file, out], { cwd: dir });
    return createHash('sha256').update(readFileSync(out)).digest('hex').slice(0, 16);
  } finally {
    rmSync(out, { force: true });
  }
}

/** An image's guest content as bytes (small images only), read by qemu-img. */
export function rawContent(dir: string, file: string, format = 'qcow2'): Buffer {
  const out = join(dir, `.content-${process.pid}.raw`);
  try {
    qemuImgOk(['convert', '-U', '-f', format, '-O', 'raw', file, out], { cwd: dir });
    return readFileSync(out);
  } finally {
    rmSync(out, { force: true });
  }
}

/**
 * Asserts each `cluster`-sized piece of `state` equals the same piece of
 * `before` or of `after` (bytes past an image's end read as zeros): what an
 * interrupted command that changes clusters one by one may leave.
 */
export function assertClusterwise(state: Buffer, before: Buffer, after: Buffer, cluster: number, what: string): void {
  const piece = (b: Buffer, at: number): Buffer => {
    const p = Buffer.alloc(cluster);
    if (at < b.length) b.copy(p, 0, at, Math.min(b.length, at + cluster));
    return p;
  };
  for (let at = 0; at < state.length; at += cluster) {
    const got = piece(state, at);
    assert.ok(got.equals(piece(before, at)) || got.equals(piece(after, at)), `${what}: the cluster at ${at} is neither as before nor as after`);
  }
}

/** qemu-img info --output=json of a file. */
export function infoOf(dir: string, file: string): Record<string, unknown> & { 'virtual-size': number } {
  return JSON.parse(qemuImgOk(['info', '-U', '--output=json', file], { cwd: dir })) as Record<string, unknown> & { 'virtual-size': number };
}

/** Virtual size and content: the state most scenarios compare. */
export function sizeAndContent(dir: string, file: string, format = 'qcow2'): { size: number; content: string } {
  return { size: infoOf(dir, file)['virtual-size'], content: contentHash(dir, file, format) };
}

/** What amend, snapshot and bitmap must keep or change as a whole: size, options, content, snapshots (with their content). */
export interface Qcow2State {
  size: number;
  options: string;
  content: string;
  snapshots: string;
}

/** The {@link Qcow2State} of `dir/file`. */
export function qcow2State(dir: string, file: string): Qcow2State {
  const info = infoOf(dir, file) as { 'virtual-size': number; 'format-specific'?: { data?: Record<string, unknown> }; snapshots?: { name: string }[] };
  const data = info['format-specific']?.data ?? {};
  const options = ['compat', 'refcount-bits', 'lazy-refcounts'].map((k) => `${k}=${String(data[k])}`).join(',');
  const snapshots = (info.snapshots ?? []).map((x) => `${x.name}:${contentHash(dir, file, 'qcow2', x.name)}`).join(',');
  return { size: info['virtual-size'], options, content: contentHash(dir, file), snapshots };
}

/** Runs qemu-img and qemu-io command lines (argv[0] names the tool) in `dir`; throws on failure. */
export function make(dir: string, commands: readonly (readonly string[])[]): void {
  for (const [tool, ...args] of commands) {
    const r = spawnSync(tool!, args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr}`);
  }
}

/** qemu-img check of every file: no corruption (exit 0, or 3 for leaks only). */
export function assertNoCorruption(dir: string, files: readonly string[], what: string): void {
  for (const f of files) {
    const r = qemuImg(['check', '-U', f], { cwd: dir });
    assert.ok(r.status === 0 || r.status === 3, `${what}: qemu-img check ${f} exit ${r.status}\n${r.stdout}${r.stderr}`);
  }
}

/** One in-place command to interrupt. */
export interface KillScenario<T> {
  readonly name: string;
  /** Makes the inputs in `dir` (with qemu-img/qemu-io). */
  setup(dir: string): void;
  /** vdisk's argv, run in the scenario's directory. */
  readonly args: readonly string[];
  /** Files qemu-img check must find free of corruption. */
  readonly check: readonly string[];
  /** What must be the same as before or after (content hashes, snapshot lists, ...). */
  observe(dir: string): T | Promise<T>;
  /** Asserts the interrupted state is acceptable; the default is "equal to before or to after". */
  verify?(state: T, before: T, after: T, what: string): void;
}

function defaultVerify<T>(state: T, before: T, after: T, what: string): void {
  const s = JSON.stringify(state);
  assert.ok(s === JSON.stringify(before) || s === JSON.stringify(after), `${what}: neither before nor after\nstate:  ${s}\nbefore: ${JSON.stringify(before)}\nafter:  ${JSON.stringify(after)}`);
}

/** Runs the scenario at seeded kill points in both modes; returns how many points stopped the command. */
export async function runKillScenario<T>(root: string, s: KillScenario<T>, seed: number): Promise<number> {
  const base = join(root, `${s.name.replace(/\W+/g, '_')}-base`);
  mkdirSync(base, { recursive: true });
  s.setup(base);
  const copy = (suffix: string): string => {
    const d = `${base}-${suffix}`;
    cpSync(base, d, { recursive: true });
    return d;
  };
  const done = copy('done');
  const countFile = join(done, '.events');
  const full = await hooked(s.args, done, { VDISK_KILL_COUNT_FILE: countFile });
  assert.equal(full.status, 0, `${s.name}: the uninterrupted run failed: ${full.stderr}`);
  assertNoCorruption(done, s.check, `${s.name}: uninterrupted`);
  const total = Number(readFileSync(countFile, 'utf8'));
  rmSync(countFile);
  const before = await s.observe(base);
  const after = await s.observe(done);
  let stopped = 0;
  for (const mode of ['kill', 'powerloss'] as const) {
    for (const at of killPoints(total, POINTS, seed + (mode === 'kill' ? 0 : 1))) {
      const dir = copy(`${mode}-${at}`);
      const r = await hooked(s.args, dir, { VDISK_KILL_AT: String(at), VDISK_KILL_MODE: mode });
      const what = `${s.name}: ${mode} at event ${at}/${total}`;
      if (r.signal === 'SIGKILL') stopped++;
      else assert.equal(r.status, 0, `${what}: ${r.stderr}`);
      assertNoCorruption(dir, s.check, what);
      (s.verify ?? defaultVerify)(await s.observe(dir), before, after, what);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return stopped;
}
