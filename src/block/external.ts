import { resolve } from 'node:path';

import { LockedError } from '../core/errors.js';
import type { ByteStore, ExternalFiles } from '../formats/driver.js';
import type { LockingMode } from '../io/byte-store.js';
import type { CacheMode } from '../core/cache-mode.js';
import { FileStore } from '../io/file-store.js';
import { pathCombine } from './path-combine.js';
import { assertRegularFile, openedReferenceCheck, resolveReference, type ResolverOptions } from './resolver.js';

/** How the files an image names are opened: resolver settings, cache mode and locking. */
export interface ExternalFileOptions extends ResolverOptions {
  /** Cache mode of the files (that of the image naming them). */
  readonly cache?: CacheMode | undefined;
  /** How the image itself is locked (`shareAll` for -U, `noShare` for convert's sources); the files follow it. */
  readonly lock?: { readonly shareAll: boolean; readonly noShare?: boolean | undefined } | undefined;
  /** Image locking of the files (that of the image naming them; `false` for `file.locking=off`). */
  readonly locking?: LockingMode | undefined;
  /**
   * Told of every file opened to be created, and whether the open made it
   * (a failed create removes the files it made, and only those).
   */
  readonly onCreate?: ((path: string, created: boolean) => void) | undefined;
  /** Files (`dev:ino`) that must not be opened for writing (convert: its sources). */
  readonly refuse?: ReadonlySet<string> | undefined;
}

/**
 * The name qemu gives the file (the reference combined with the referring
 * image's name as given, e.g. `sub/x-flat.vmdk`), used as the store's name
 * for `map` and messages; the resolved path when that names another file.
 */
function shownName(name: string, referrer: string, resolved: string): string {
  const combined = pathCombine(referrer, name);
  if (resolve(combined) === resolved) return combined;
  return resolve(name) === resolved ? name : resolved;
}

/**
 * The ExternalFiles a driver gets for one image: every name goes through
 * the resolver (trust mode, regular files only), and every file is locked
 * as the image itself is (qemu locks each file of a node), so a data file
 * or extent in use elsewhere is never written. Stores opened are pushed to
 * `opened` so the caller can close them if the open fails.
 */
export function externalFiles(referrer: string, rootDir: string, options: ExternalFileOptions, opened: ByteStore[] = []): ExternalFiles {
  // Files these opens created: nobody else's yet, so reopening them needs no lock where none can be taken.
  const made = new Set<string>();
  return {
    async open(name, role, opts) {
      const what = role === 'data-file' ? 'data file' : 'extent';
      const path = await resolveReference(name, referrer, what, rootDir, options);
      // Named as qemu names it: the image's name combined with the reference, not the resolved path.
      const shown = shownName(name, referrer, path);
      if (!opts.create) await assertRegularFile(path, what, shown);
      const lockRole = opts.metadata ? ('metadata' as const) : ('data' as const);
      const locking = options.locking ?? true;
      const optional = locking === 'auto' || made.has(path);
      const lock = locking === false || opts.unlocked ? undefined : { shareAll: false, ...options.lock, write: !opts.readOnly, role: lockRole, optional };
      const verify = openedReferenceCheck(name, referrer, what, rootDir, options);
      let store: FileStore;
      try {
        store = await FileStore.open(shown, { readOnly: opts.readOnly, create: opts.create, cache: options.cache, lock, refuse: options.refuse, verify });
      } catch (err) {
        // qemu names the file as the image's name combined with the reference.
        if (!(err instanceof LockedError)) throw err;
        throw new LockedError(err.message, { file: shown, cause: err, hint: `Is another process using the image [${shown}]?` });
      }
      opened.push(store);
      if (store.created) made.add(path);
      if (opts.create) options.onCreate?.(path, store.created);
      return store;
    },
  };
}
