/**
 * Setting a store's length as qemu's file driver does without
 * preallocation (file-posix handle_aiocb_truncate): growing an empty file
 * also writes its first block (allocate_first_block, which keeps later
 * alignment probing cheap), so the file uses the space qemu's does.
 */
import type { ByteStore } from './byte-store.js';

const MAX_BLOCKSIZE = 4096;
const SECTOR = 512;

/** Truncates `store` to `size`; an empty store grown this way gets its first block written. */
export async function truncateLikeQemu(store: ByteStore, size: number): Promise<void> {
  const empty = (await store.size()) === 0;
  await store.truncate(size);
  if (empty && size > 0) await store.write(0, new Uint8Array(size < MAX_BLOCKSIZE ? SECTOR : MAX_BLOCKSIZE));
}
