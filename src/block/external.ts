import { resolve } from 'node:path';

import type { ByteStore, ExternalFiles } from '../formats/driver.js';
import type { CacheMode } from '../io/cache-mode.js';
import { FileStore } from '../io/file-store.js';
import { pathCombine } from './path-combine.js';
import { assertRegularFile, resolveReference, type ResolverOptions } from './resolver.js';

/**
 * The name qemu gives the file (the reference combined with the referring
 * image's name as given, e.g. `sub/x-flat.vmdk`), used as the store's name
 * for `map` and messages; the resolved path when that names another file.
 */
function shownName(name: string, referrer: string, resolved: string): string {
  const shown = pathCombine(referrer, name);
  return resolve(shown) === resolved ? shown : resolved;
}

/**
 * The ExternalFiles a driver gets for one image: every name goes through
 * the resolver (trust mode, regular files only). Stores opened are pushed
 * to `opened` so the caller can close them if the open fails.
 */
export function externalFiles(
  referrer: string,
  rootDir: string,
  options: ResolverOptions & { readonly cache?: CacheMode | undefined },
  opened: ByteStore[] = [],
): ExternalFiles {
  return {
    async open(name, role, opts) {
      const what = role === 'data-file' ? 'data file' : 'extent';
      const path = await resolveReference(name, referrer, what, rootDir, options);
      if (!opts.create) await assertRegularFile(path, what);
      const store = await FileStore.open(shownName(name, referrer, path), { readOnly: opts.readOnly, create: opts.create, cache: options.cache });
      opened.push(store);
      return store;
    },
  };
}
