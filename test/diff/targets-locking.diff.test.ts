/**
 * Image locking is never silently off. Without the native
 * module (VDISK_NO_NATIVE, or installed without a compiler) a writable open
 * of an existing image is refused, since another process (here qemu-nbd
 * serving it) could be writing it; reads go on; `--no-lock`,
 * `file.locking=off|auto` and the API's `locking: false` opt out; new files
 * need no opt-out. `capabilities()` says what the process supports, and
 * VDISK_NO_NATIVE is honoured at install as at run time.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as vdiskApi from '../../src/index.js';
import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, tmpDir } from '../helpers/qemu.js';
import { serveWithQemuNbd } from '../helpers/targets-hold.js';

const dir = tmpDir('vdisk-targets-lock-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);
const INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));
const NO_NATIVE = { VDISK_NO_NATIVE: '1' };
const UNAVAILABLE = /Failed to lock 'x\.qcow2': image locking is unavailable \(vdisk's native module is not built, or VDISK_NO_NATIVE is set\)\n.*--no-lock/;
const hasNbd = spawnSync('qemu-nbd', ['--version']).status === 0;

/** Runs an ESM snippet against the built package in a child process (argv[1] is the package). */
function sdk(code: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--input-type=module', '-e', code, INDEX], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
}

/** A process-wide callable `capabilities` (also proves the export). */
function capabilitiesOf(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const r = sdk(`const { capabilities } = await import(process.argv[1]); console.log(JSON.stringify(capabilities()));`, env);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('capabilities()', () => {
  it('says what this process supports', () => {
    const caps = (vdiskApi as unknown as { capabilities: () => Record<string, unknown> }).capabilities();
    const has = native !== undefined;
    assert.equal(caps['native'], has);
    assert.equal(caps['locking'], has);
    assert.equal(caps['directIo'], has);
    assert.equal(caps['copyOffload'], has);
    assert.equal(caps['nativeStatus'], has ? 'loaded' : caps['nativeStatus']);
  });

  it('VDISK_NO_NATIVE turns the native module off, and says so', () => {
    assert.deepEqual(capabilitiesOf(NO_NATIVE), {
      native: false,
      nativeStatus: 'disabled',
      locking: false,
      directIo: false,
      copyOffload: false,
      holeDetection: false,
      fallocate: false,
    });
  });
});

describe('writable opens without image locking', { skip: hasQemu && hasNbd ? false : 'needs qemu-img and qemu-nbd' }, () => {
  const writers: readonly (readonly string[])[] = [
    ['resize', 'x.qcow2', '2M'],
    ['snapshot', '-c', 'snap', 'x.qcow2'],
    ['amend', '-o', 'lazy_refcounts=on', 'x.qcow2'],
    ['bitmap', '--add', 'x.qcow2', 'b0'],
    ['check', '-r', 'all', 'x.qcow2'],
    ['convert', '-O', 'qcow2', 'other.qcow2', 'x.qcow2'],
    ['convert', '-n', '-O', 'qcow2', 'other.qcow2', 'x.qcow2'],
    ['create', '-f', 'qcow2', 'x.qcow2', '1M'],
    ['dd', '-O', 'qcow2', 'if=other.qcow2', 'of=x.qcow2'],
  ];

  it('are refused on an image qemu-nbd serves (without the native module), and leave it as it was', async () => {
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.qcow2', '1M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'other.qcow2', '1M'], { cwd });
    const server = await serveWithQemuNbd('x.qcow2', cwd);
    try {
      const before = readFileSync(at('x.qcow2'));
      for (const args of writers) {
        const r = vdisk(args, { cwd, env: NO_NATIVE });
        assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, UNAVAILABLE, args.join(' '));
        assert.ok(readFileSync(at('x.qcow2')).equals(before), `${args.join(' ')} left the served image alone`);
      }
      // Reading goes on without locks (nothing is at stake for the image).
      assert.equal(vdisk(['info', '-U', 'x.qcow2'], { cwd, env: NO_NATIVE }).status, 0);
      const r = sdk(`const { open } = await import(process.argv[1]); try { await open('x.qcow2', { readOnly: false }); console.log('opened'); } catch (e) { console.log(e.constructor.name, e.code); }`, NO_NATIVE);
      assert.equal(r.stdout.trim(), 'UnsupportedError EUNSUPPORTED', r.stderr);
    } finally {
      await server.release();
    }
  });

  it('with the native module, fail as qemu-img does', async (t) => {
    if (!native) return t.skip('native module not built');
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.qcow2', '1M'], { cwd });
    const server = await serveWithQemuNbd('x.qcow2', cwd);
    try {
      for (const args of [writers[0]!, writers[1]!, writers[7]!]) {
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(q.status, 1, q.stderr);
        assert.equal(r.status, 1, args.join(' '));
        assert.equal(r.stderr, asVdisk(q.stderr), args.join(' '));
      }
    } finally {
      await server.release();
    }
  });

  it('go on when the caller opts out: --no-lock, file.locking=off|auto, locking: false', () => {
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.qcow2', '1M'], { cwd });
    for (const args of [
      ['resize', '--no-lock', 'x.qcow2', '2M'],
      ['resize', '--image-opts', 'driver=qcow2,file.filename=x.qcow2,file.locking=off', '3M'],
      ['resize', '--image-opts', 'driver=qcow2,file.filename=x.qcow2,file.locking=auto', '4M'],
      ['snapshot', '--no-lock', '-c', 'snap', 'x.qcow2'],
    ]) {
      const r = vdisk(args, { cwd, env: NO_NATIVE });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const r = sdk(`const { resize } = await import(process.argv[1]); await resize('x.qcow2', '5M', { locking: false }); console.log('ok');`, NO_NATIVE);
    assert.equal(r.stdout.trim(), 'ok', r.stderr);
    assert.match(qemuImgOk(['info', 'x.qcow2'], { cwd }), /virtual size: 5 MiB/);
  });

  it('new files need no opt-out', () => {
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'other.qcow2', '1M'], { cwd });
    for (const args of [
      ['create', '-q', '-f', 'qcow2', 'new1.qcow2', '1M'],
      ['convert', '-O', 'qcow2', 'other.qcow2', 'new2.qcow2'],
      ['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', 'other.qcow2', 'new3.vmdk'],
      ['dd', '-O', 'qcow2', 'if=other.qcow2', 'of=new4.qcow2'],
    ]) {
      const r = vdisk(args, { cwd, env: NO_NATIVE });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});

describe('VDISK_NO_NATIVE at install', () => {
  it('skips building the native module', () => {
    const script = fileURLToPath(new URL('../../../scripts/build-native.mjs', import.meta.url));
    const marker = at('gyp-ran');
    const gyp = at('fake-gyp.cjs');
    writeFileSync(gyp, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x');\n`);
    chmodSync(gyp, 0o755);
    const run = (env: NodeJS.ProcessEnv): void => {
      const r = spawnSync(process.execPath, [script], { env: { ...process.env, VDISK_NO_NATIVE: '', npm_config_node_gyp: gyp, ...env }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    run(NO_NATIVE);
    assert.equal(existsSync(marker), false, 'node-gyp did not run');
    if (process.platform !== 'linux') return;
    run({});
    assert.equal(existsSync(marker), true, 'without it, the build runs (the fake node-gyp here)');
  });
});
