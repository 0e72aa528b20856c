/**
 * The one place external references found inside images (backing files,
 * data files, extents) become paths. Hostile images attack here: names are
 * checked against the trust mode, resolved against the referring image's
 * directory, and anything that is not a regular file is refused before it
 * is opened. Under `untrusted` the file actually opened is checked again
 * ({@link openedReferenceCheck}): a name can change between its check and
 * its open, a descriptor cannot.
 */
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

import { UnsafeReferenceError, UnsupportedError, InvalidArgumentError } from '../core/errors.js';
import { fsError } from '../io/errno.js';
import { readlink, realpath, stat } from '../io/fs-names.js';
import type { OpenedFileCheck } from '../io/file-store.js';
import type { SecretOptions } from '../core/secrets.js';
import { redactUrl } from '../io/http/url.js';
import { networkScheme } from './network-stores.js';
import { pathCombine } from './path-combine.js';
import { localName, protocolPrefix, QEMU_PROTOCOLS } from './protocol-name.js';

/**
 * How far external references are followed:
 * - `qemu`: what qemu-img follows (relative and absolute paths), minus
 *   non-regular files, `json:` and protocol names unless allowed;
 * - `untrusted`: only files inside the top image's own directory (judged
 *   on the opened descriptor), never a file with more than one hard link;
 * - `none`: no external references at all.
 */
export type TrustMode = 'qemu' | 'untrusted' | 'none';

/**
 * Settings shared by every reference of one open (every job's options
 * extend them, which is also how the secrets of encrypted images reach
 * each layer's driver).
 */
export interface ResolverOptions extends SecretOptions {
  /** The trust mode (default `qemu`). */
  readonly trust?: TrustMode | undefined;
  /** Allow `json:` and protocol names (URLs vdisk has a store for are opened, see `allowUrls`; the rest still fail, clearly). */
  readonly allowProtocols?: boolean | undefined;
  /**
   * Under trust `qemu`, open backing files an image names by URL
   * (`nbd://`, `nbd+unix:///…?socket=…`, `http(s)://`), as qemu-img does
   * (the CLI sets this). Off by default: an uploaded image could otherwise
   * make the process connect wherever it says.
   */
  readonly allowUrls?: boolean | undefined;
}

/** What a reference is, for messages. */
export type ReferenceRole = 'backing file' | 'data file' | 'extent';

/** The protocol prefix of `name` (`nbd` in `nbd://x`), if it has a known one. */
export function protocolOf(name: string): string | undefined {
  const p = protocolPrefix(name);
  return p !== undefined && (p === 'json' || QEMU_PROTOCOLS.has(p)) ? p : undefined;
}

/**
 * What a relative reference is relative to. qemu combines backing file and
 * extent names with the referring image's directory, but opens a qcow2
 * data file by its name as given (bdrv_open_child without path_combine),
 * so a relative data file is relative to the working directory, at create
 * and at open; under `untrusted` every reference is relative to the image,
 * inside which it must lie anyway.
 */
function relativeBase(role: ReferenceRole, referrer: string, trust: TrustMode): string {
  return role === 'data file' && trust !== 'untrusted' ? process.cwd() : dirname(referrer);
}

/**
 * Turns a name recorded in `referrer` into a path, applying the trust mode.
 * Does not open anything.
 *
 * @param rootDir - the directory `untrusted` mode confines references to
 * @throws {UnsafeReferenceError} EUNSAFE when the mode forbids the reference
 */
export async function resolveReference(
  name: string,
  referrer: string,
  role: ReferenceRole,
  rootDir: string,
  options: ResolverOptions = {},
): Promise<string> {
  const trust = options.trust ?? 'qemu';
  const what = `${role} '${name}' of '${referrer}'`;
  if (name === '') throw new InvalidArgumentError(`Empty ${role} name in '${referrer}'`, { file: referrer });
  if (name.includes('\0')) throw new UnsafeReferenceError(`The ${what} contains a NUL byte`, { file: referrer });
  if (trust === 'none') throw new UnsafeReferenceError(`Refusing to open the ${what}: external references are disabled (trust mode 'none')`, { file: referrer });
  const url = role === 'backing file' ? networkReference(name, referrer) : undefined;
  if (url !== undefined) return followedUrl(url, name, { trust, allowUrls: options.allowUrls === true || options.allowProtocols === true }, what, referrer);
  let path = name;
  let base = relativeBase(role, referrer, trust);
  const proto = protocolPrefix(name);
  if (proto === 'file' && trust === 'qemu') {
    // qemu's path_combine leaves a name with a protocol as it is: a relative `file:` name is relative to the working directory.
    path = localName(name).path;
    base = process.cwd();
  } else if (proto !== undefined && proto !== 'json' && !QEMU_PROTOCOLS.has(proto) && trust === 'qemu') {
    throw new UnsupportedError(`Cannot open the ${what}: Unknown protocol '${proto}'`, { file: referrer, data: { protocol: proto } });
  } else if (proto !== undefined) {
    if (!options.allowProtocols || trust !== 'qemu') {
      throw new UnsafeReferenceError(
        `Refusing to open the ${what}: '${proto}:' names are not followed unless protocols are allowed`,
        { file: referrer, data: { protocol: proto } },
      );
    }
    throw new UnsupportedError(`Cannot open the ${what}: the '${proto}:' protocol is not supported`, { file: referrer });
  }
  const resolved = isAbsolute(path) ? path : resolve(base, path);
  if (trust === 'untrusted') await assertInside(resolved, rootDir, what, referrer);
  return resolved;
}

/**
 * The URL a backing name stands for: a URL itself, or a relative name in
 * an image read from a URL (qemu combines the two as paths).
 */
function networkReference(name: string, referrer: string): string | undefined {
  if (networkScheme(name) !== undefined) return name;
  if (networkScheme(referrer) === undefined || isAbsolute(name) || protocolOf(name) !== undefined) return undefined;
  return pathCombine(referrer, name);
}

/**
 * A backing URL under the trust mode. A relative name in an image read from
 * a URL is like a relative file name: `qemu` follows it, `untrusted` only
 * while it stays in that URL's directory (no `..`). A URL the image names
 * itself is followed only under `qemu` with URLs allowed.
 */
function followedUrl(url: string, name: string, how: { trust: TrustMode; allowUrls: boolean }, what: string, referrer: string): string {
  const named = networkScheme(name);
  const segments = [name, safeDecode(name)].flatMap((n) => n.split(/[/?#]/));
  if (how.trust === 'qemu' && (named === undefined || how.allowUrls)) return url;
  if (how.trust === 'untrusted' && named === undefined && !segments.includes('..')) return url;
  const why = how.trust === 'qemu' ? `'${named}:' names are not followed unless protocols are allowed` : "network names are not followed outside the image's own location (untrusted mode)";
  throw new UnsafeReferenceError(`Refusing to open the ${what}: ${why}`, {
    file: referrer,
    reason: 'network-reference',
    data: { url: /^https?:/i.test(url) ? redactUrl(url) : url },
  });
}

function safeDecode(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

async function assertInside(path: string, rootDir: string, what: string, referrer: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    throw fsError(err, `Could not open '${path}'`, path);
  }
  await assertRealInside(real, rootDir, what, referrer);
}

/** Refuses `real` (a path without symlinks) unless it lies inside `rootDir`. */
async function assertRealInside(real: string, rootDir: string, what: string, referrer: string): Promise<void> {
  let root: string;
  try {
    root = await realpath(rootDir);
  } catch (err) {
    throw fsError(err, `Could not open '${rootDir}'`, rootDir);
  }
  const rel = relative(root, real);
  if (rel === '' || rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel)) {
    throw new UnsafeReferenceError(`Refusing to open the ${what}: it is outside '${root}' (untrusted mode)`, {
      file: referrer,
      data: { resolved: real },
    });
  }
}

/**
 * The check `untrusted` mode makes on the file a reference opened, not on
 * its name: the name was vetted before the open, but a symlink on the way
 * can be switched in between (or a hard link made to a file from outside,
 * which no path check can see). So the opened descriptor's own path
 * (/proc/self/fd) must lie inside `rootDir`, and a file with more than one
 * link is refused. Undefined when the trust mode confines nothing.
 */
export function openedReferenceCheck(
  name: string,
  referrer: string,
  role: ReferenceRole,
  rootDir: string,
  options: ResolverOptions = {},
): OpenedFileCheck | undefined {
  if ((options.trust ?? 'qemu') !== 'untrusted') return undefined;
  const what = `${role} '${name}' of '${referrer}'`;
  return async (fd, st, path) => {
    if (st.nlink > 1) {
      throw new UnsafeReferenceError(
        `Refusing to open the ${what}: it has ${st.nlink} hard links, and hard links may lead outside '${rootDir}' (untrusted mode)`,
        { file: referrer, data: { nlink: st.nlink } },
      );
    }
    await assertRealInside(await openedPath(fd, st, path, what, referrer), rootDir, what, referrer);
  };
}

/**
 * Where the descriptor `fd` really is: /proc/self/fd/N names the opened
 * inode whatever happened to the name since. Without /proc, the name's
 * real path now, accepted only when it still leads to the opened inode.
 */
async function openedPath(fd: number, st: { dev: number; ino: number }, path: string, what: string, referrer: string): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${fd}`);
  } catch {
    // No procfs: fall through to the name, checked against the descriptor.
  }
  try {
    const real = await realpath(path);
    const now = await stat(real);
    if (now.dev === st.dev && now.ino === st.ino) return real;
  } catch {
    // The name is gone or changed: refused below.
  }
  throw new UnsafeReferenceError(`Refusing to open the ${what}: it changed while it was opened (untrusted mode)`, { file: referrer });
}

/**
 * Checks that `path` is a regular file without opening it, so a FIFO named
 * as backing file can never block the process.
 */
export async function assertRegularFile(path: string, what: string, shown = path): Promise<{ dev: number; ino: number }> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw fsError(err, `Could not open '${shown}'`, shown);
  }
  if (!st.isFile()) {
    // A device an image names is refused (an untrusted image could read a disk); other special files in
    // the words of qemu's file driver, which refuses them too.
    if (st.isDirectory() || st.isFIFO() || st.isSocket()) throw new UnsafeReferenceError(`'file' driver requires '${shown}' to be a regular file`, { file: path });
    throw new UnsafeReferenceError(`Refusing to open ${what} '${path}': it is a device, not a regular file`, { file: path });
  }
  return { dev: st.dev, ino: st.ino };
}
