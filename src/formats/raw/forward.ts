/**
 * raw, read forward: the stream is the guest disk; its size is known only
 * when the stream ends.
 */
import type { ForwardImage, ForwardSource, GuestWrite } from '../driver.js';
import { plainWrites } from '../forward-writes.js';

/** A raw image read from a forward-only source. */
export function readRawForward(source: ForwardSource): Promise<ForwardImage> {
  let size = 0;
  let done = false;
  const image: ForwardImage = {
    size: undefined,
    async *writes(): AsyncIterable<GuestWrite> {
      yield* plainWrites(source, 0, () => undefined, (n) => (size = n));
      done = true;
    },
    finalSize(): number {
      if (!done) throw new Error('raw forward image: finalSize before the writes ended');
      // As qemu sees a raw file: in whole sectors, the last one zero-padded.
      return Math.ceil(size / 512) * 512;
    },
  };
  return Promise.resolve(image);
}
