/**
 * The decoded form of the last compressed unit read (a dmg chunk, a cloop
 * block), shared by concurrent readers: qemu keeps one such buffer per
 * image, so reading a unit sector by sector decodes it once.
 */
export class UnitCache {
  #key = -1;
  #value: Promise<Uint8Array> | undefined;

  /** The decoded unit `key`, decoding it (once, even for concurrent callers) when it is not the cached one. */
  get(key: number, decode: () => Promise<Uint8Array>): Promise<Uint8Array> {
    if (this.#value && this.#key === key) return this.#value;
    const value = decode();
    this.#key = key;
    this.#value = value;
    // a failed decode is not kept: the next read tries again, as qemu's does
    value.catch(() => {
      if (this.#value === value) this.#value = undefined;
    });
    return value;
  }
}
