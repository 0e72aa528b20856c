/**
 * Finding an image in a backing chain by the name a user gives it, as
 * qemu's bdrv_find_backing_image does: relative to each overlay's
 * directory, compared by real path (URLs by name).
 */
import { InvalidArgumentError } from '../core/errors.js';
import { realpath } from '../io/fs-names.js';
import type { Layer } from './layer.js';
import { networkScheme } from './network-stores.js';
import { pathCombine } from './path-combine.js';

async function canonical(path: string): Promise<string | undefined> {
  // A URL is its own canonical name (qemu compares the names of protocol nodes).
  if (networkScheme(path) !== undefined) return path;
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

/**
 * The depth (1 = the top's backing file) of the layer `name` names.
 *
 * @throws {InvalidArgumentError} when no layer below the top is that file
 */
export async function findBackingImage(layers: readonly Layer[], name: string): Promise<number> {
  for (let depth = 1; depth < layers.length; depth++) {
    const want = await canonical(pathCombine((layers[depth - 1] as Layer).path, name));
    if (want !== undefined && want === (await canonical((layers[depth] as Layer).path))) return depth;
  }
  throw new InvalidArgumentError(`Did not find '${name}' in the backing chain of '${(layers[0] as Layer).filename}'`);
}
