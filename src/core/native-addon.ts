/**
 * Finds and loads vdisk's optional native module (native/, built at
 * install). Loading lives in core because both io (file operations) and
 * core's codecs (compressed units on the thread pool) use the one module;
 * each side types the functions it calls (io/native.ts, core/codec-native.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

/** Why the native module is or is not in use (see `capabilities()`). */
export type NativeStatus = 'loaded' | 'disabled' | 'unsupported-platform' | 'not-built' | 'load-failed';

function load(): { addon?: object; status: NativeStatus; error?: string } {
  // The one switch, honoured at install too (scripts/build-native.mjs skips the build).
  if (process.env['VDISK_NO_NATIVE']) return { status: 'disabled' };
  if (process.platform !== 'linux') return { status: 'unsupported-platform' };
  const root = packageRoot();
  const file = root && join(root, 'native', 'build', 'Release', 'vdisk_native.node');
  if (!file || !existsSync(file)) return { status: 'not-built' };
  try {
    // process.dlopen, not require(): the same load without the module loader's resolution, which
    // cost ~1 ms of every command's start-up.
    const module = { exports: {} };
    process.dlopen(module, file);
    return { addon: module.exports, status: 'loaded' };
  } catch (err) {
    return { status: 'load-failed', error: err instanceof Error ? err.message : String(err) };
  }
}

const loaded = load();
/** The loaded module's exports, untyped (see the typed views in io/native.ts and core/codec-native.ts). */
export const nativeAddon: object | undefined = loaded.addon;
/** Whether the native module loaded, and why not (with the loader's message when loading failed). */
export const nativeStatus: { readonly status: NativeStatus; readonly error?: string | undefined } = { status: loaded.status, error: loaded.error };
