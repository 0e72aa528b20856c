import type { ImageTarget, OpenImageOptions } from './chain.js';
import { BlockDevice } from './device.js';

/**
 * Opens an image and its backing chain; read-only unless `readOnly: false`.
 * A ByteStore passed as `target` stays the caller's: closing the device, or
 * a failed open, leaves it open (the image locks taken on it are released).
 *
 * @example
 * ```ts
 * await using img = await open('disk.qcow2');
 * const head = new Uint8Array(512);
 * await img.read(0, head);
 * ```
 * @throws {NotFoundError} ENOENT, {@link UnknownFormatError} EFORMAT, {@link CorruptImageError} ECORRUPT,
 *   {@link BackingLoopError} ELOOP, {@link ChainDepthError} EDEPTH, {@link UnsafeReferenceError} EUNSAFE
 */
export function open(target: ImageTarget, options: OpenImageOptions = {}): Promise<BlockDevice> {
  return BlockDevice.open(target, options);
}
