import { isAbsolute } from 'node:path';

import { networkScheme } from './network-stores.js';
import { protocolPrefix } from './protocol-name.js';

/**
 * QEMU's path_combine: a relative reference is taken relative to the
 * directory part of the referring image's name *as given*, so messages show
 * the same paths qemu-img shows (`dir/base.qcow2`, not an absolute path).
 * A name with a protocol (`file:base.qcow2`, a URL) stays as it is, and
 * relative to a URL is a URL (`http://host/dir/top.qcow2` + `base.qcow2` =
 * `http://host/dir/base.qcow2`).
 */
export function pathCombine(baseFilename: string, name: string): string {
  if (isAbsolute(name) || networkScheme(name) !== undefined || protocolPrefix(name) !== undefined) return name;
  const slash = baseFilename.lastIndexOf('/');
  if (slash < 0) return name;
  return baseFilename.slice(0, slash + 1) + name;
}

/**
 * Where a relative name recorded in `referrer` has no place: an NBD export
 * has no directory (qemu's nbd_dirname), so a relative backing name of an
 * image read over NBD cannot be resolved.
 */
export function hasNoDirectory(referrer: string, name: string): boolean {
  return networkScheme(referrer)?.startsWith('nbd') === true && !isAbsolute(name) && networkScheme(name) === undefined && protocolPrefix(name) === undefined;
}

/** qemu's bdrv_get_full_backing_filename: undefined where it "cannot determine actual path". */
export function fullBackingName(referrer: string, name: string): string | undefined {
  return hasNoDirectory(referrer, name) ? undefined : pathCombine(referrer, name);
}
