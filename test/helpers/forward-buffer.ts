/** A forward-only source over bytes in memory, for tests of the drivers' forward readers. */
import { CorruptImageError } from '../../src/core/errors.js';
import type { ForwardSource } from '../../src/formats/driver.js';

/** Reads `bytes` front to back; `maxRead` caps what one call returns beyond what it must. */
export function bufferSource(bytes: Uint8Array, name = '-'): ForwardSource & { readonly reads: number } {
  let pos = 0;
  let reads = 0;
  const take = (n: number): Uint8Array => {
    reads++;
    const out = bytes.slice(pos, Math.min(bytes.length, pos + n));
    pos += out.length;
    return out;
  };
  return {
    get position() {
      return pos;
    },
    get reads() {
      return reads;
    },
    read(length: number): Promise<Uint8Array> {
      const out = take(length);
      if (out.length < length) return Promise.reject(new CorruptImageError(`'${name}' ended at offset ${pos}`, { offset: pos, reason: 'stream-ended' }));
      return Promise.resolve(out);
    },
    readUpTo(length: number): Promise<Uint8Array> {
      return Promise.resolve(take(length));
    },
    skip(length: number): Promise<void> {
      return this.read(length).then(() => undefined);
    },
  };
}
