/**
 * Request buffers in shared memory that start on a page boundary. The
 * kernel copies between the page cache and a user buffer page by page, and
 * on the x86 machines measured (bench/RESULTS.md, ninth session) a buffer
 * 16 bytes into its page, where malloc puts large blocks, makes those copies
 * ~40% dearer for reads. Only the native module can tell where a buffer
 * sits; without it buffers stay where the allocator put them.
 */
import { nativeAddon } from './native-addon.js';

const PAGE = 4096;
const pageOffset = (nativeAddon as { pageOffset?: (view: Uint8Array) => number } | undefined)?.pageOffset;

/** `size` bytes of shared memory, starting on a page boundary when the native module is loaded. */
export function sharedPageBuffer(size: number): Uint8Array {
  if (!pageOffset) return new Uint8Array(new SharedArrayBuffer(size));
  const memory = new SharedArrayBuffer(size + PAGE);
  return new Uint8Array(memory, (PAGE - pageOffset(new Uint8Array(memory, 0, 1))) % PAGE, size);
}

/** The whole of a buffer `sharedPageBuffer` made, from a view of it that starts where it starts. */
export function wholePageBuffer(view: Uint8Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.buffer.byteLength - (pageOffset ? PAGE : 0));
}
