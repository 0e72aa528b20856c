/**
 * The installed executable (scripts/bundle-cli.mjs): the launcher vdisk.cjs
 * (and vdisk.js, which imports it) runs the CommonJS bundle vdisk-bundle.cjs
 * through V8's code cache. Every path (cache used, missing, stale, corrupt;
 * no bundle at all) must print and exit exactly as the unbundled bin.js does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { VDISK_BIN } from '../../helpers/cli.js';

const CLI_DIR = fileURLToPath(new URL('../../../src/cli/', import.meta.url));
const BIN_JS = join(CLI_DIR, 'bin.js');
const LAUNCHER = join(CLI_DIR, 'vdisk.cjs');
const BUNDLE = join(CLI_DIR, 'vdisk-bundle.cjs');

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function node(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = ['amend', 'bench', 'bitmap', 'check', 'commit', 'compare', 'convert', 'create', 'dd', 'info', 'inspect', 'map', 'measure', 'rebase', 'resize', 'snapshot'];

// A scratch copy of the launcher lives inside build/src so the bundle finds the package (native module, node_modules) as in place.
let work: string;
let image: string;

before(() => {
  work = mkdtempSync(join(CLI_DIR, '..', '.startup-test-'));
  image = join(work, 'empty.qcow2');
  const r = node([BIN_JS, 'create', '-q', '-f', 'qcow2', image, '1G'], work);
  assert.equal(r.status, 0, r.stderr);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A launcher in its own directory `name` under the scratch dir, with the given files beside it. */
function launcherCopy(name: string, files: { bundle?: boolean | ((whole: Buffer) => Buffer); cache?: Buffer | 'copy' } = {}): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(LAUNCHER, join(dir, 'vdisk.cjs'));
  if (typeof files.bundle === 'function') writeFileSync(join(dir, 'vdisk-bundle.cjs'), files.bundle(readFileSync(BUNDLE)));
  else if (files.bundle !== false) copyFileSync(BUNDLE, join(dir, 'vdisk-bundle.cjs'));
  if (files.cache === 'copy') copyFileSync(`${BUNDLE}.cache`, join(dir, 'vdisk-bundle.cjs.cache'));
  else if (files.cache) writeFileSync(join(dir, 'vdisk-bundle.cjs.cache'), files.cache);
  // Without a whole bundle the launcher imports bin.js beside it: here, the real one.
  if (files.bundle !== undefined && files.bundle !== true) writeFileSync(join(dir, 'bin.js'), `import ${JSON.stringify(BIN_JS)};\n`);
  return join(dir, 'vdisk.cjs');
}

/** The reference: the same words through the unbundled modules. */
const unbundled = (args: readonly string[]): Run => node([BIN_JS, ...args], work);

describe('the bundled CLI', () => {
  it('is built with its code cache beside it', () => {
    assert.ok(existsSync(BUNDLE), 'vdisk-bundle.cjs');
    assert.ok(existsSync(`${BUNDLE}.cache`), 'vdisk-bundle.cjs.cache');
  });

  it('prints every command\'s --help, --version and its usage errors as bin.js does', () => {
    const cases = [...COMMANDS.map((c) => [c, '--help']), ['--version'], ['--help'], [], ['nosuch'], ['toString'], ['info']];
    for (const args of cases) {
      const expected = unbundled(args);
      assert.deepEqual(node([LAUNCHER, ...args], work), expected, args.join(' '));
      assert.deepEqual(node([VDISK_BIN, ...args], work), expected, `vdisk.js ${args.join(' ')}`);
    }
  });

  it('runs info (human and JSON) as bin.js does', () => {
    for (const args of [['info', image], ['info', '--output=json', image], ['check', image], ['map', '--output=json', image]]) {
      const r = node([LAUNCHER, ...args], work);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r, unbundled(args), args.join(' '));
    }
  });

  it('does not load node:crypto or the zstd WASM for info', () => {
    const probe = join(work, 'probe.mjs');
    writeFileSync(probe, `import { createRequire } from 'node:module';
process.on('exit', () => {
  const mods = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const files = Object.keys(createRequire(import.meta.url).cache);
  process.stderr.write(JSON.stringify({ crypto: mods.includes('crypto'), zstd: files.some((f) => f.includes('zstd-wasm')) }));
});\n`);
    const r = node(['--import', probe, LAUNCHER, 'info', image], work);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stderr), { crypto: false, zstd: false });
  });
});

describe('the SDK entry', () => {
  it('loads neither node:crypto nor the zstd WASM at import', () => {
    const entry = join(CLI_DIR, '..', 'index.js');
    const check = `import { createRequire } from 'node:module';
await import(${JSON.stringify(entry)});
const mods = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
const files = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ crypto: mods.includes('crypto'), zstd: files.some((f) => f.includes('zstd-wasm')) }));\n`;
    const r = node(['--input-type=module', '-e', check], work);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { crypto: false, zstd: false });
  });
});

describe('the launcher falls back', () => {
  const cases: [string, Parameters<typeof launcherCopy>[1], string | undefined][] = [
    ['without a cache', {}, 'missing or for another build'],
    ['with a cache made for another bundle', { cache: Buffer.from('// vdisk-bundle 0000 node v0 x v8 0\n\u0000garbage') }, 'missing or for another build'],
    ['with a cache V8 refuses (right key, damaged code)', { cache: 'copy' }, 'refused by V8'],
    ['with an empty cache file', { cache: Buffer.alloc(0) }, 'missing or for another build'],
    ['without the bundle (bin.js unbundled)', { bundle: false }, undefined],
    // An interrupted install or build: such a bundle ran nothing (or part of the CLI) and exited 0.
    ['with an empty bundle', { bundle: () => Buffer.alloc(0) }, 'not whole'],
    ['with a bundle cut short', { bundle: (b) => b.subarray(0, b.length >> 1) }, 'not whole'],
    ['with a bundle cut inside its last line of code', { bundle: (b) => b.subarray(0, b.indexOf('\n// vdisk-bundle-end') - 3) }, 'not whole'],
    ['with a bundle whose build line is gone', { bundle: (b) => b.subarray(b.indexOf(0x0a) + 1) }, 'not whole'],
  ];
  for (const [name, files, status] of cases) {
    it(name, () => {
      const bin = launcherCopy(name.replace(/\W+/g, '-'), files);
      if (name.includes('damaged')) {
        // Keep the key line, overwrite the V8 data after it.
        const file = `${bin.slice(0, -'vdisk.cjs'.length)}vdisk-bundle.cjs.cache`;
        const data = readFileSync(file);
        data.fill(0x5a, data.indexOf(0x0a) + 1);
        writeFileSync(file, data);
      }
      for (const args of [['info', '--output=json', image], ['--version'], ['nosuch']]) {
        assert.deepEqual(node([bin, ...args], work), unbundled(args), `${name}: ${args.join(' ')}`);
      }
      // NODE_DEBUG=vdisk tells which path ran.
      const traced = node([bin, '--version'], work, { NODE_DEBUG: 'vdisk' }).stderr;
      if (status === 'not whole') assert.match(traced, /^VDISK \d+: bundle .*vdisk-bundle\.cjs is not whole; running bin\.js\n$/);
      else if (status) assert.match(traced, new RegExp(`^VDISK \\d+: code cache ${status}\n$`));
      else assert.equal(traced, '');
    });
  }

  it('uses the cache the build made', () => {
    assert.match(node([LAUNCHER, '--version'], work, { NODE_DEBUG: 'vdisk' }).stderr, /^VDISK \d+: code cache used\n$/);
  });

  it('writes a cache on request that V8 then accepts, and ignores it for a changed bundle', () => {
    const bin = launcherCopy('written');
    const dir = bin.slice(0, -'vdisk.cjs'.length);
    const r = node([bin, 'info', image], work, { VDISK_WRITE_CODE_CACHE: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'vdisk-bundle.cjs.cache')));
    const check = `import { cacheKey, compileBundle, readCache } from ${JSON.stringify(join(CLI_DIR, 'launch.js'))};
import { setUpProcess } from ${JSON.stringify(join(CLI_DIR, 'process-setup.js'))};
import { readFileSync } from 'node:fs';
setUpProcess();
const file = ${JSON.stringify(join(dir, 'vdisk-bundle.cjs'))};
const source = readFileSync(file, 'utf8');
const cached = readCache(file + '.cache', cacheKey(source));
const edited = source.replace(/^\\/\\/ vdisk-bundle \\w+/, '// vdisk-bundle edited');
console.log(JSON.stringify({ found: cached !== undefined, rejected: compileBundle(file, source, cached).cachedDataRejected, other: readCache(file + '.cache', cacheKey(edited)) === undefined }));\n`;
    const c = node(['--input-type=module', '-e', check], work);
    assert.equal(c.status, 0, c.stderr);
    assert.deepEqual(JSON.parse(c.stdout), { found: true, rejected: false, other: true });
  });
});
