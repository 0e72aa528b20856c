// Builds the browser ES module (`DIR/browser/vdisk.js`, default dist) from
// the compiled library (DIR/browser.js): inspect over a Blob, nothing of
// Node on its path. The library's modules import Node built-ins (files,
// zlib, crypto) for the paths a browser never takes; in this bundle each
// built-in is a stand-in whose functions throw when called, so loading the
// module costs nothing and a path that needed Node fails with a clear
// error instead of a missing import. `node:path` is a real POSIX
// implementation (names in images are resolved for reporting), `events`
// a small EventEmitter (a Job is one), `process`
// a minimal object and `Buffer` the `buffer` package (a dev dependency:
// bundled here, never loaded by the Node library). The bundle must not import anything: a test checks.
// Usage: node scripts/bundle-browser.mjs [DIR]
import { builtinModules, createRequire } from 'node:module';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const dir = resolve(process.argv[2] ?? 'dist');
const out = join(dir, 'browser');
const require = createRequire(import.meta.url);

/** A stand-in module for a Node built-in: every export a function that throws, classes included. */
function standIn(name) {
  const real = require(name);
  const keys = Object.keys(real).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
  const lines = [
    `const missing = (what) => function () { throw new Error(what + ' is not available in the browser build of vdisk'); };`,
    ...keys.map((k) => (k === 'createRequire' ? `export const createRequire = () => missing('require');` : `export const ${k} = missing(${JSON.stringify(`${name}.${k}`)});`)),
    `export default {};`,
  ];
  return lines.join('\n');
}

/** POSIX path functions the resolver and inspect use, working on '/'-separated names. */
const PATH = `
const norm = (p) => { const abs = p.startsWith('/'); const out = []; for (const s of p.split('/')) { if (!s || s === '.') continue; if (s === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); } else out.push(s); } const r = (abs ? '/' : '') + out.join('/'); return r || (abs ? '/' : '.'); };
export const sep = '/';
export const delimiter = ':';
export const isAbsolute = (p) => p.startsWith('/');
export const normalize = (p) => norm(p);
export const join = (...ps) => norm(ps.filter(Boolean).join('/'));
export const resolve = (...ps) => { let r = ''; for (let i = ps.length - 1; i >= 0 && !r.startsWith('/'); i--) r = ps[i] + (r ? '/' + r : ''); return norm(r.startsWith('/') ? r : '/' + r); };
export const dirname = (p) => { const n = norm(p); const i = n.lastIndexOf('/'); return i < 0 ? '.' : i === 0 ? '/' : n.slice(0, i); };
export const basename = (p, ext) => { const b = norm(p).split('/').pop() ?? ''; return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b; };
export const extname = (p) => { const b = basename(p); const i = b.lastIndexOf('.'); return i > 0 ? b.slice(i) : ''; };
export const relative = (from, to) => { const a = resolve(from).split('/').filter(Boolean); const b = resolve(to).split('/').filter(Boolean); let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/'); };
export const posix = { sep, delimiter, isAbsolute, normalize, join, resolve, dirname, basename, extname, relative };
export default posix;
`;

// Buffer: the library uses Node's Buffer for byte strings; the `buffer` package is its browser twin.
/** The part of `node:events` jobs use (`Job` is an EventEmitter). */
const EVENTS = `
export class EventEmitter {
  #l = new Map();
  on(e, f) { (this.#l.get(e) ?? this.#l.set(e, []).get(e)).push(f); return this; }
  addListener(e, f) { return this.on(e, f); }
  prependListener(e, f) { (this.#l.get(e) ?? this.#l.set(e, []).get(e)).unshift(f); return this; }
  once(e, f) { const w = (...a) => { this.off(e, w); f.apply(this, a); }; w.listener = f; return this.on(e, w); }
  off(e, f) { const l = this.#l.get(e); if (l) { const i = l.findIndex((x) => x === f || x.listener === f); if (i >= 0) l.splice(i, 1); } return this; }
  removeListener(e, f) { return this.off(e, f); }
  removeAllListeners(e) { if (e === undefined) this.#l.clear(); else this.#l.delete(e); return this; }
  emit(e, ...a) { const l = this.#l.get(e); if (!l || l.length === 0) { if (e === 'error') throw a[0]; return false; } for (const f of [...l]) f.apply(this, a); return true; }
  listenerCount(e) { return this.#l.get(e)?.length ?? 0; }
  listeners(e) { return [...(this.#l.get(e) ?? [])].map((f) => f.listener ?? f); }
  setMaxListeners() { return this; }
}
export default EventEmitter;
`;

const PROCESS = `export { Buffer } from 'buffer';\nexport const setImmediate = (f, ...a) => setTimeout(f, 0, ...a);\nexport const clearImmediate = (t) => clearTimeout(t);\nexport const process = { env: {}, argv: [], platform: 'browser', versions: {}, cwd: () => '/', on() {}, off() {}, once() {}, emitWarning() {}, nextTick: (f, ...a) => queueMicrotask(() => f(...a)) };`;

const nodeBuiltins = {
  name: 'node-builtins',
  setup(build) {
    const names = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    // `buffer` is the npm package (the trailing slash skips the built-in).
    const bufferPackage = require.resolve('buffer/');
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.path === 'buffer' || args.path === 'node:buffer') return { path: bufferPackage };
      return names.has(args.path) ? { path: args.path.replace(/^node:/, ''), namespace: 'node-builtin' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({ contents: args.path === 'path' || args.path === 'path/posix' ? PATH : args.path === 'events' ? EVENTS : standIn(args.path), loader: 'js' }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const esbuild = await import('esbuild');
const processShim = join(out, '.process-shim.mjs');
writeFileSync(processShim, PROCESS);
try {
  await esbuild.build({
    entryPoints: [join(dir, 'browser.js')],
    outfile: join(out, 'vdisk.js'),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    inject: [processShim],
    plugins: [nodeBuiltins],
    // Packages (fflate, the zstd WASM) are bundled: a browser has no node_modules.
    logLevel: 'warning',
    legalComments: 'eof',
  });
} finally {
  rmSync(processShim, { force: true });
}
const text = readFileSync(join(out, 'vdisk.js'), 'utf8');
if (/^\s*import\s/m.test(text) || /\bimport\(\s*["']/.test(text)) {
  console.error('dist/browser/vdisk.js imports a module: it must stand alone');
  process.exit(1);
}
