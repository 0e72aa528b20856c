/**
 * What the read-only formats (dmg, bochs, cloop) share: qemu's refusal of
 * a read/write open, and bounded host reads.
 */
import { IoError, UnsupportedError } from '../../core/errors.js';
import type { ByteStore, OpenOptions } from '../driver.js';

/**
 * qemu's drivers start with bdrv_apply_auto_read_only: a read/write open
 * (resize, commit, amend, check -r, snapshot -c) fails before the file is read.
 */
export function refuseWritable(options: OpenOptions): void {
  if (!options.readOnly) throw new UnsupportedError('Image is read-only', { file: options.filename });
}

/**
 * Reads `length` bytes at `offset`: past the end of the file (or past what
 * a JavaScript number holds exactly) the bytes read as zeros, as a file
 * read past EOF does in qemu.
 */
export async function readHost(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  if (length > 0 && Number.isSafeInteger(offset) && Number.isSafeInteger(offset + length)) await store.read(offset, buf);
  return buf;
}

/** qemu's answer to a read its driver cannot serve (-EIO). */
export function readFailed(cause?: unknown): IoError {
  return new IoError('Input/output error', cause === undefined ? {} : { cause });
}
