// esbuild plugins shared by the CLI bundle (scripts/bundle-cli.mjs) and the
// CommonJS build of the library (scripts/bundle-cjs.mjs).
import { readFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

/** The bundle-level helper `metaUrlPlugin` calls: the URL of a file named relative to the bundle's directory. */
export const META_URL_HELPER =
  'function __vdiskMetaUrl(rel){return require("node:url").pathToFileURL(require("node:path").join(__dirname,rel)).href}';

/**
 * `import.meta.url` of each module becomes its own file's URL again, computed from the bundle's place
 * (`outDir`), so files found beside a module (the native module, the codec worker) are found from the bundle.
 */
export function metaUrlPlugin(outDir) {
  return {
    name: 'meta-url',
    setup(build) {
      build.onLoad({ filter: /\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = JSON.stringify(relative(outDir, args.path).split('\\').join('/'));
        // A bundle-level helper: a module's own local named `require` cannot shadow it.
        const url = `__vdiskMetaUrl(${rel})`;
        return { contents: text.replaceAll('import.meta.url', url), loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
}
