import { isAbsolute } from 'node:path';

/**
 * QEMU's path_combine: a relative reference is taken relative to the
 * directory part of the referring image's name *as given*, so messages show
 * the same paths qemu-img shows (`dir/base.qcow2`, not an absolute path).
 */
export function pathCombine(baseFilename: string, name: string): string {
  if (isAbsolute(name)) return name;
  const slash = baseFilename.lastIndexOf('/');
  if (slash < 0) return name;
  return baseFilename.slice(0, slash + 1) + name;
}
