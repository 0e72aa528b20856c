/**
 * Setting a store's length as qemu's file driver does without
 * preallocation (file-posix handle_aiocb_truncate): growing an empty file
 * also writes its first block (allocate_first_block, which keeps later
 * alignment probing cheap), so the file uses the space qemu's does.
 */
import { inStepWords, systemErrno } from '../core/strerror.js';
import type { ByteStore } from './byte-store.js';

const MAX_BLOCKSIZE = 4096;
const SECTOR = 512;

/** Truncates `store` to `size`; an empty store grown this way gets its first block written. */
export async function truncateLikeQemu(store: ByteStore, size: number): Promise<void> {
  const empty = (await store.size()) === 0;
  await store.truncate(size);
  if (empty && size > 0) await store.write(0, new Uint8Array(size < MAX_BLOCKSIZE ? SECTOR : MAX_BLOCKSIZE));
}

/**
 * A failed growth of a file in file-posix's words (raw_regular_truncate),
 * for errors with a system cause (a full disk, a file size limit): falloc
 * grows by fallocate alone ("Could not preallocate new data"); full
 * truncates, then writes zeros ("Could not resize file", "Could not write
 * zeros for preallocation"); off truncates. `phase` says which of vdisk's
 * steps failed; where vdisk writes full's zeros without truncating first, a
 * file size limit (EFBIG) is what qemu's truncate would have met.
 */
export function fileGrowthError(err: unknown, mode: string, phase: 'resize' | 'fill'): unknown {
  if (mode === 'falloc') return inStepWords(err, 'Could not preallocate new data');
  if (mode === 'full' && phase === 'fill' && systemErrno(err) !== 'EFBIG') return inStepWords(err, 'Could not write zeros for preallocation');
  return inStepWords(err, 'Could not resize file');
}
