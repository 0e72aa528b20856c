// Builds the CLI's executable, DIR/cli/vdisk.cjs (the package's `bin`), from
// the compiled modules in DIR:
// - DIR/cli/vdisk-bundle.cjs: bin.js and every module it reaches, one
//   CommonJS script. Loading ~250 small ESM files costs Node ~0.1 s of
//   resolving and reading; one script, whose compiled code V8 can cache,
//   costs a fraction. Commands stay lazily evaluated (main.ts imports each
//   when it runs).
// - DIR/cli/vdisk.cjs: cli/launch.js alone, which runs the bundle with the
//   code cache DIR/cli/vdisk-bundle.cjs.cache (scripts/cli-cache.mjs makes
//   it). CommonJS: an ES module entry costs Node's start-up its ESM loader.
// - DIR/cli/vdisk.js: imports vdisk.cjs, for those who run that file.
// Without esbuild (a devDependency) vdisk.cjs only imports bin.js, so the
// CLI works either way, only slower to start.
// Usage: node scripts/bundle-cli.mjs [DIR] [--no-sourcemap]
// (the published build has no source maps: their sources are not shipped).
import { createHash } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { META_URL_HELPER, metaUrlPlugin } from './bundle-common.mjs';
import { buildCodeCache } from './cli-cache.mjs';

/** The bundle's end line (src/cli/launch.ts checks for it). */
const BUNDLE_END = '// vdisk-bundle-end';
const args = process.argv.slice(2);
const dir = resolve(args.find((a) => !a.startsWith('--')) ?? 'dist');
const sourcemap = !args.includes('--no-sourcemap');
const cliDir = join(dir, 'cli');
const bundle = join(cliDir, 'vdisk-bundle.cjs');
const out = join(cliDir, 'vdisk.cjs');
const esmEntry = join(cliDir, 'vdisk.js');

// Packages that find files beside their own module (zstd-wasm reads its .wasm) stay outside the bundle.
const EXTERNAL = ['@bokuweb/zstd-wasm'];

const metaUrl = metaUrlPlugin(cliDir);

/**
 * A package imported with `import()` is required on first use: a script compiled by `vm` has no
 * `import()` in Node 20 (modules of DIR are bundled, so only an `import()` of a computed name
 * would be left, and would fail: use a literal or createRequire).
 */
const lazyRequire = {
  name: 'lazy-require',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind === 'dynamic-import' ? { path: args.path, namespace: 'lazy-require' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'lazy-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
      resolveDir: cliDir,
    }));
  },
};

let bundled = false;
try {
  const esbuild = await import('esbuild');
  const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', write: false };
  const cjs = await esbuild.build({
    ...common,
    entryPoints: [join(cliDir, 'bin.js')],
    outfile: bundle,
    format: 'cjs',
    external: EXTERNAL,
    plugins: [lazyRequire, metaUrl],
    banner: { js: `"use strict";${META_URL_HELPER}` },
    // No comments, indentation or long local names: less to read, hash, scan and deserialise at
    // every start (the map has the source). Measured: `info` 40.7 → 38.3 ms, a small convert
    // 47.0 → 44.2 ms. Names that show (error classes) are set explicitly (core/errors.ts).
    minifyWhitespace: true,
    minifyIdentifiers: true,
    minifySyntax: true,
    sourcemap: sourcemap ? 'linked' : false,
  });
  if (!sourcemap) rmSync(`${bundle}.map`, { force: true });
  for (const f of cjs.outputFiles) {
    // The first line names the build: a code cache made for another bundle is never used.
    // bin.js's #! line, kept by esbuild, is no script syntax: a comment keeps the lines where the map has them.
    if (f.path === bundle) {
      // The last line of code is followed by an end line (before the source map's comment, which
      // stays last): the launcher runs only a bundle that has both, never one an interrupted write cut.
      const text = f.text.replace(/^#!/, '//#!').replace(/\n?(\/\/# sourceMappingURL=[^\n]*\n?)?$/, (_m, map) => `\n${BUNDLE_END}\n${map ?? ''}`);
      writeFileSync(f.path, `// vdisk-bundle ${createHash('sha256').update(text).digest('hex').slice(0, 32)}\n${text}`);
    }
    // ... so the source map's lines start one line later.
    else writeFileSync(f.path, JSON.stringify({ ...JSON.parse(f.text), mappings: `;${JSON.parse(f.text).mappings}` }));
  }
  await esbuild.build({
    ...common,
    write: true,
    stdin: { contents: "import { start } from './launch.js';\nvoid start(__dirname);\n", resolveDir: cliDir, sourcefile: 'launcher.js' },
    outfile: out,
    format: 'cjs',
    plugins: [metaUrl],
    banner: { js: '#!/usr/bin/env node' },
  });
  bundled = true;
} catch (err) {
  console.error(`bundle-cli: ${err instanceof Error ? err.message : String(err)}; the CLI loads unbundled modules instead`);
}
if (!bundled) {
  rmSync(bundle, { force: true });
  rmSync(`${bundle}.cache`, { force: true });
  writeFileSync(out, "#!/usr/bin/env node\nimport('./bin.js');\n");
}
writeFileSync(esmEntry, "#!/usr/bin/env node\nimport './vdisk.cjs';\n");
chmodSync(out, 0o755);
chmodSync(esmEntry, 0o755);
if (bundled) buildCodeCache(dir);
