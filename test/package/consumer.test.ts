/**
 * The package as its users meet it: `npm pack`, installed into a fresh
 * project, used from a strict TypeScript ES module consumer (both entries,
 * a MemoryStore and a path) and from CommonJS (`require('vdisk')`, typed
 * and plain); the code blocks of README.md, docs/*.md and the API's
 * `@example`s compile against it in strict mode; and the tarball holds no
 * source map, no unbundled CLI and no `prepare` script.
 *
 * One build (only when dist/ is older than the sources), one pack and one
 * install per run. Skipped, loudly, without npm.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { docSnippets, snippetModule } from './snippets.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const hasNpm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasNpm) console.error('\n*** test/package/consumer: npm is not on PATH; the packed-package tests are SKIPPED ***\n');

function run(cmd: string, args: readonly string[], options: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20, ...options });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${String(r.stdout)}\n${String(r.stderr)}`);
  return String(r.stdout);
}

/** Newest modification time under `dir` (files only). */
function newest(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .reduce((t, e) => Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
}

/** Builds dist/ unless it is newer than everything it is built from. */
function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(join(ROOT, 'dist', 'cjs', 'vdisk.js')).mtimeMs;
  } catch {
    // not built
  }
  const sources = Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'scripts')), statSync(join(ROOT, 'package.json')).mtimeMs);
  if (built < sources) run('npm', ['run', 'build'], { cwd: ROOT });
}

const TSCONFIG = (include: readonly string[]): string =>
  JSON.stringify({
    compilerOptions: {
      target: 'es2022',
      lib: ['es2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
      // The package's declarations are checked too: a consumer without skipLibCheck must compile.
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      outDir: 'out',
    },
    include,
  });

const ESM_CONSUMER = `
import { readFile } from 'node:fs/promises';
import { convert, create, info, MemoryStore, VdiskError, type ImageInfo, type JobProgress } from 'vdisk';
import { defaultRegistry, type FormatDriver } from 'vdisk/driver';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: consumer.js DIR');
const source = \`\${dir}/disk.qcow2\`;
await create(source, { format: 'qcow2', size: '8M' });

const events: JobProgress[] = [];
const job = convert(source, \`\${dir}/disk.raw\`, { targetFormat: 'raw' });
job.on('progress', (p) => events.push(p));
const copied = await job;

const store = new MemoryStore('disk.qcow2', new Uint8Array(await readFile(source)));
const described: ImageInfo[] = await info(store);
const onPath: ImageInfo[] = await info(source);
const drivers: readonly FormatDriver[] = defaultRegistry.list();
let missing = '';
try {
  await info(\`\${dir}/missing.qcow2\`);
} catch (err) {
  if (err instanceof VdiskError) missing = err.code;
}
console.log(JSON.stringify({
  copied: copied.size,
  progress: events.length > 0,
  store: described[0]?.format,
  path: onPath[0]?.format,
  qcow2: drivers.some((d) => d.name === 'qcow2'),
  missing,
}));
`;

const CJS_CONSUMER = `
import vdisk = require('vdisk');
import driver = require('vdisk/driver');

async function main(): Promise<void> {
  const store = new vdisk.MemoryStore('empty.raw', new Uint8Array(1 << 20));
  const [top] = await vdisk.info(store, { format: 'raw' });
  console.log(JSON.stringify({ format: top?.format, drivers: driver.defaultRegistry.list().length > 0, values: Object.keys(vdisk).length }));
}
void main();
`;

const JOBS_CONSUMER = `
import { join } from 'node:path';
import {
  amend, bench, bitmap, check, commit, compare, convert, create, dd, info, measure, rebase, resize, snapshot,
  MemoryStore, type ByteStore, type Job, type JobProgress,
} from 'vdisk';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: jobs.js DIR');
let serial = 0;
type Image = string | ByteStore;
// Installed without the native module (no image locks): jobs that write an existing image say so.
const MiB = 1 << 20;
const fresh = (name: string): string => join(dir, \`\${serial++}-\${name}\`);
async function image(kind: string, name: string, backing?: string): Promise<Image> {
  const target: Image = kind === 'path' ? fresh(name) : new MemoryStore(name);
  await create(target, backing === undefined ? { format: 'qcow2', size: 4 * MiB } : { format: 'qcow2', backingFile: backing, backingFormat: 'qcow2' });
  return target;
}
async function overlay(kind: string): Promise<Image> {
  const base = fresh('base.qcow2');
  await create(base, { format: 'qcow2', size: 4 * MiB });
  return image(kind, 'top.qcow2', base);
}
const out = (kind: string, name: string): Image => (kind === 'path' ? fresh(name) : new MemoryStore(name));

const JOBS: Record<string, (kind: string) => Promise<() => Job<unknown, string>>> = {
  info: async (k) => { const i = await image(k, 'i.qcow2'); return () => info(i); },
  create: async (k) => { const o = out(k, 'n.qcow2'); return () => create(o, { format: 'qcow2', size: MiB }); },
  check: async (k) => { const i = await image(k, 'c.qcow2'); return () => check(i); },
  compare: async (k) => { const a = await image(k, 'a.qcow2'); const b = await image(k, 'b.qcow2'); return () => compare(a, b); },
  measure: async (k) => { const i = await image(k, 'm.qcow2'); return () => measure(i, { targetFormat: 'qcow2' }); },
  commit: async (k) => { const i = await overlay(k); return () => commit(i, { locking: false }); },
  rebase: async (k) => { const i = await overlay(k); return () => rebase(i, undefined, { unsafe: true, locking: false }); },
  amend: async (k) => { const i = await image(k, 'am.qcow2'); return () => amend(i, { options: 'lazy_refcounts=on', locking: false }); },
  resize: async (k) => { const i = await image(k, 'r.qcow2'); return () => resize(i, '+1M', { locking: false }); },
  snapshot: async (k) => { const i = await image(k, 's.qcow2'); return () => snapshot(i, { action: 'create', name: 'before', locking: false }); },
  bitmap: async (k) => { const i = await image(k, 'b.qcow2'); return () => bitmap(i, 'b0', [{ op: 'add' }], { locking: false }); },
  dd: async (k) => { const i = await image(k, 'dd.qcow2'); const o = out(k, 'dd.raw'); return () => dd(i, o, { blockSize: 65536, count: 4 }); },
  bench: async (k) => { const i = await image(k, 'bench.qcow2'); return () => bench(i, { count: 8, bufferSize: 4096 }); },
  convert: async (k) => { const i = await image(k, 'cv.qcow2'); const o = out(k, 'cv.raw'); return () => convert(i, o); },
};

const done: string[] = [];
for (const kind of ['path', 'MemoryStore']) {
  for (const [name, make] of Object.entries(JOBS)) {
    const job = (await make(kind))();
    await job;
    if (job.state === 'done') done.push(\`\${name}:\${kind}\`);
  }
}

// convert into a MemoryStore, with a progress listener
const source = fresh('src.raw');
await create(source, { format: 'raw', size: 8 * MiB });
const target = new MemoryStore('copy.qcow2');
const events: JobProgress[] = [];
const job = convert(source, target, { targetFormat: 'qcow2', onProgress: (p) => events.push(p) });
await job;
const [copy] = await info(target);
const full = events.filter((p) => p.percent === 100);
const last = events[events.length - 1];
console.log(JSON.stringify({
  done: done.length,
  copySize: copy?.virtualSize,
  copyFormat: copy?.format,
  fields: events.every((p) => typeof p.percent === 'number' && typeof p.bytesPerSecond === 'number' && typeof p.phase === 'string' && (p.eta === undefined || typeof p.eta === 'number')),
  hundred: full.length,
  lastIsHundred: last?.percent === 100,
}));
`;

describe('the packed package', { skip: !hasNpm && 'npm is missing' }, () => {
  const work = mkdtempSync(join(tmpdir(), 'vdisk-consumer-'));
  const app = join(work, 'app');
  let tarball = '';

  before(() => {
    ensureBuilt();
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT })) as { filename: string }[];
    tarball = join(work, packed[0]?.filename ?? '');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // No native build (node-gyp takes long and is optional); the install script still runs.
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app, env: { ...process.env, VDISK_NO_NATIVE: '1' } });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('ships no source map, no unbundled CLI and no prepare script', () => {
    const files = run('tar', ['tzf', tarball]).trim().split('\n');
    assert.deepEqual(files.filter((f) => f.endsWith('.map')), []);
    assert.deepEqual(files.filter((f) => f.startsWith('package/dist/cli/')).sort(), ['package/dist/cli/vdisk-bundle.cjs', 'package/dist/cli/vdisk.cjs']);
    assert.ok(files.includes('package/dist/cjs/index.js') && files.includes('package/dist/cjs/index.d.ts'));
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules', 'vdisk', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['prepare'], undefined);
  });

  it('ships every source the native module is built from (binding.gyp\'s and the headers they include)', () => {
    const files = new Set(run('tar', ['tzf', tarball]).trim().split('\n'));
    const gyp = readFileSync(join(ROOT, 'native', 'binding.gyp'), 'utf8');
    const sources = [...gyp.matchAll(/"([\w-]+\.c)"/g)].map((m) => m[1] as string);
    assert.ok(sources.length >= 3, gyp);
    const headers = sources.flatMap((c) => [...readFileSync(join(ROOT, 'native', c), 'utf8').matchAll(/#include "([\w-]+\.h)"/g)].map((m) => m[1] as string));
    for (const f of ['binding.gyp', ...sources, ...headers]) assert.ok(files.has(`package/native/${f}`), `package/native/${f} is in the package`);
  });

  it('a strict TypeScript consumer compiles against both entries, CommonJS included, and runs', () => {
    writeFileSync(join(app, 'consumer.mts'), ESM_CONSUMER);
    writeFileSync(join(app, 'consumer-cjs.cts'), CJS_CONSUMER);
    writeFileSync(join(app, 'tsconfig.json'), TSCONFIG(['consumer.mts', 'consumer-cjs.cts']));
    run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app });

    const esm = JSON.parse(run(process.execPath, [join(app, 'out', 'consumer.mjs'), app])) as Record<string, unknown>;
    assert.deepEqual(esm, { copied: 8 << 20, progress: true, store: 'qcow2', path: 'qcow2', qcow2: true, missing: 'ENOENT' });
    const cjs = JSON.parse(run(process.execPath, [join(app, 'out', 'consumer-cjs.cjs')])) as Record<string, unknown>;
    assert.deepEqual({ ...cjs, values: undefined }, { format: 'raw', drivers: true, values: undefined });
    assert.ok(Number(cjs['values']) > 0 && Number(cjs['values']) <= 40);
  });

  it('a strict consumer runs every job on a path and on a MemoryStore, converts into a MemoryStore, and sees one 100% progress event', () => {
    writeFileSync(join(app, 'jobs.mts'), JOBS_CONSUMER);
    writeFileSync(join(app, 'tsconfig.jobs.json'), TSCONFIG(['jobs.mts']));
    run(process.execPath, [TSC, '-p', 'tsconfig.jobs.json'], { cwd: app });
    const scratch = join(work, 'jobs');
    mkdirSync(scratch);
    const r = JSON.parse(run(process.execPath, [join(app, 'out', 'jobs.mjs'), scratch])) as Record<string, unknown>;
    assert.deepEqual(r, { done: 28, copySize: 8 << 20, copyFormat: 'qcow2', fields: true, hundred: 1, lastIsHundred: true });
  });

  it('require("vdisk") works from plain CommonJS, and both entries share one registry and one error class', () => {
    writeFileSync(join(app, 'plain.cjs'), `
const vdisk = require('vdisk');
const driver = require('vdisk/driver');
const { defaultRegistry } = require('vdisk/driver');
const err = new vdisk.NotFoundError('x');
console.log(JSON.stringify({ same: driver.defaultRegistry === defaultRegistry, brand: err instanceof vdisk.VdiskError, open: typeof vdisk.open }));
`);
    assert.deepEqual(JSON.parse(run(process.execPath, [join(app, 'plain.cjs')])), { same: true, brand: true, open: 'function' });
  });

  it('the CLI runs from the installed bin', () => {
    const out = run(join(app, 'node_modules', '.bin', 'vdisk'), ['--version'], { cwd: app });
    assert.match(out, /^vdisk version /);
  });

  it('the code of README.md, docs/*.md and the API examples compiles in strict mode', () => {
    const dir = join(app, 'snippets');
    mkdirSync(dir, { recursive: true });
    const snippets = docSnippets(ROOT);
    assert.ok(snippets.length >= 10, `found ${snippets.length} snippets`);
    snippets.forEach((s, i) => writeFileSync(join(dir, `s${i}.mts`), `// ${s.where}\n${snippetModule(s.code)}`));
    writeFileSync(join(app, 'tsconfig.snippets.json'), TSCONFIG(['snippets/*.mts']));
    const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.snippets.json', '--noEmit'], { cwd: app, encoding: 'utf8' });
    // Name each failing snippet by where it comes from.
    const report = r.stdout.replace(/snippets\/s(\d+)\.mts/g, (_m, n: string) => snippets[Number(n)]?.where ?? _m);
    assert.equal(r.status, 0, report);
  });
});
