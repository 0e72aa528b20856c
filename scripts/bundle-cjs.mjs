// Builds the library for CommonJS consumers (`require('vdisk')`, the
// `require` condition of package.json's exports) from the compiled ES
// modules in DIR (default dist), into DIR/cjs/:
// - vdisk.js: one CommonJS bundle of every entry (index.js, driver.js, stream.js),
//   so `vdisk`, `vdisk/driver` and `vdisk/stream` share one copy of every class and of the
//   default driver registry (two bundles would hold two of each).
// - index.js, driver.js: each entry's names, taken from that bundle.
// - package.json saying "commonjs", and a copy of every declaration file:
//   TypeScript reads a .d.ts under it as the types of a CommonJS module, as
//   they are for a `require` (the ES module's .d.ts would be the wrong kind).
// Packages stay outside the bundle: they are the package's dependencies.
// Usage: node scripts/bundle-cjs.mjs [DIR]
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { META_URL_HELPER, metaUrlPlugin } from './bundle-common.mjs';

const dir = resolve(process.argv[2] ?? 'dist');
const out = join(dir, 'cjs');
/** The package's entry points (package.json "exports"), by their names in the bundle. */
const ENTRIES = { main: 'index', driver: 'driver', stream: 'stream', net: 'net', cloud: 'cloud' };

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const esbuild = await import('esbuild');
await esbuild.build({
  stdin: {
    contents: Object.entries(ENTRIES).map(([name, file]) => `export * as ${name} from './${file}.js';`).join('\n'),
    resolveDir: dir,
    sourcefile: 'entries.js',
  },
  outfile: join(out, 'vdisk.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  plugins: [metaUrlPlugin(out)],
  banner: { js: `"use strict";${META_URL_HELPER}` },
  logLevel: 'warning',
});
for (const [name, file] of Object.entries(ENTRIES)) {
  writeFileSync(join(out, `${file}.js`), `"use strict";\nmodule.exports = require('./vdisk.js').${name};\n`);
}
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
// The CLI's declarations are nobody's types (the CLI ships bundled).
function copyDeclarations(from, to) {
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    if (e.isDirectory()) {
      if (src !== out && src !== join(dir, 'cli')) copyDeclarations(src, join(to, e.name));
    } else if (e.name.endsWith('.d.ts')) {
      mkdirSync(to, { recursive: true });
      copyFileSync(src, join(to, e.name));
    }
  }
}
copyDeclarations(dir, out);
