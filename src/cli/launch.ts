/**
 * The `vdisk` executable as installed: scripts/bundle-cli.mjs bundles this
 * file alone into DIR/cli/vdisk.cjs (the package's `bin`; CommonJS, so Node
 * starts it without its ESM loader, and vdisk.js imports it for those who
 * run that). It runs vdisk-bundle.cjs beside it (bin.ts and everything it
 * reaches, one CommonJS script) through V8's code cache: compiling the
 * ~600 KB bundle from source costs a short command about as much as Node's
 * own start-up, deserializing the cached code a fraction of it. Node 20
 * caches the code of scripts compiled by `vm` only (its own compile cache
 * came in Node 22), hence the script format.
 *
 * Every failure falls back and changes nothing a user sees: a cache that is
 * missing, from another build or another Node (V8 refuses one made by
 * another V8 or with other flags) leaves the plain compile; without the
 * bundle (no esbuild when it was built) bin.js runs unbundled.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { debuglog } from 'node:util';
import * as vm from 'node:vm';

import { setUpProcess } from './process-setup.js';

const debug = debuglog('vdisk');

/** How scripts/bundle-cli.mjs starts a bundle (then its content hash) and ends its code. */
const BUILD_LINE = '// vdisk-bundle ';
const END_LINE = '\n// vdisk-bundle-end\n';

/** Set (to anything) by scripts/cli-cache.mjs: write the code cache when the run ends. */
const WRITE_CACHE_ENV = 'VDISK_WRITE_CODE_CACHE';

/** What must match for a cache to be used: the bundle's build line (its content hash) and this Node. */
export function cacheKey(source: string): string {
  const end = source.indexOf('\n');
  return `${end > 0 ? source.slice(0, end) : ''} node ${process.version} ${process.arch} v8 ${process.versions.v8}\n`;
}

/** The cached code in `file` when it was made for `key`, else undefined. */
export function readCache(file: string, key: string): Buffer | undefined {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  const len = Buffer.byteLength(key);
  return data.length > len && data.toString('latin1', 0, len) === key ? data.subarray(len) : undefined;
}

/** Writes `key` and the script's code (with every function compiled so far) to `file`, atomically; false when it cannot. */
export function writeCache(file: string, key: string, script: vm.Script): boolean {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, Buffer.concat([Buffer.from(key, 'latin1'), script.createCachedData()]));
    fs.renameSync(temp, file);
    return true;
  } catch {
    fs.rmSync(temp, { force: true });
    return false;
  }
}

/** Compiles the CommonJS `source` of `file` as Node's loader would (same wrapper), with `cachedData` when given. */
export function compileBundle(file: string, source: string, cachedData: Buffer | undefined): vm.Script {
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source}\n})`;
  return new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
}

/** Runs a compiled bundle as the module `file`. */
function runBundle(script: vm.Script, file: string): void {
  const module = { exports: {} };
  const fn = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  fn.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
}

/** Starts the CLI from the bundle `file` (cache at `file`.cache); false when there is no bundle. */
export function launch(file: string): boolean {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  // A bundle that is not whole (emptied or cut by an interrupted install or build) would run
  // nothing, or part of the CLI, and exit 0: bin.js runs instead. Only its source map's comment
  // may follow the end line.
  const end = source.lastIndexOf(END_LINE);
  const tail = end < 0 ? undefined : source.slice(end + END_LINE.length);
  if (!source.startsWith(BUILD_LINE) || tail === undefined || !/^(\/\/# sourceMappingURL=[^\n]*\n?)?$/.test(tail)) {
    debug('bundle %s is not whole; running bin.js', file);
    return false;
  }
  setUpProcess();
  const cacheFile = `${file}.cache`;
  const key = cacheKey(source);
  const cached = readCache(cacheFile, key);
  const script = compileBundle(file, source, cached);
  // A slow start has one cause worth telling: NODE_DEBUG=vdisk says whether the cache served.
  debug('code cache %s', cached === undefined ? 'missing or for another build' : script.cachedDataRejected ? 'refused by V8' : 'used');
  if (process.env[WRITE_CACHE_ENV] !== undefined) {
    // After the run, so the cache holds the code of every function the command used.
    // A failed write changes nothing (scripts/cli-cache.mjs looks for the file).
    process.once('exit', () => writeCache(cacheFile, key, script));
  }
  runBundle(script, file);
  return true;
}

/** The body of the executable in `dir`: the bundle beside it, else bin.js unbundled. */
export async function start(dir: string): Promise<void> {
  if (launch(path.join(dir, 'vdisk-bundle.cjs'))) return;
  await import(pathToFileURL(path.join(dir, 'bin.js')).href);
}
