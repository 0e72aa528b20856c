/**
 * Byte-granular space for compressed clusters (QEMU's qcow2_alloc_bytes):
 * compressed data is packed one after another, sharing host clusters, each
 * sharer holding one reference on every cluster its bytes touch.
 */
import type { Geometry } from './layout.js';
import type { Refcounts } from './refcount.js';

export class CompressedSpace {
  readonly #rc: Refcounts;
  readonly #g: Geometry;
  /** Free space left in the last cluster used for compressed data. */
  #cursor = { offset: 0, end: 0 };

  constructor(rc: Refcounts, g: Geometry) {
    this.#rc = rc;
    this.#g = g;
  }

  /** Forgets the partly used cluster (after frees or moved tables it may no longer be ours). */
  reset(): void {
    this.#cursor = { offset: 0, end: 0 };
  }

  /** Host offset of `len` bytes for one compressed cluster; references taken. */
  async allocate(len: number): Promise<number> {
    const cs = this.#g.clusterSize;
    const cur = this.#cursor;
    if (cur.end - cur.offset >= len && cur.offset % cs !== 0 && (await this.#share(cur.offset))) {
      const at = cur.offset;
      const last = Math.floor((at + len - 1) / cs);
      for (let c = Math.floor(at / cs) + 1; c <= last; c++) await this.#rc.add(c, 1);
      cur.offset += len;
      return at;
    }
    // Like qcow2_alloc_bytes: when the next free clusters follow the partly used one, the data
    // spans into them instead of leaving the rest of the current cluster unused.
    const partial = cur.offset % cs !== 0 && cur.end > cur.offset;
    const room = partial ? cur.end - cur.offset : 0;
    const n = Math.ceil((partial ? len - room : len) / cs);
    const host = await this.#rc.allocate(n);
    if (partial && host === cur.end && (await this.#share(cur.offset))) {
      const at = cur.offset;
      this.#cursor = { offset: at + len, end: host + n * cs };
      return at;
    }
    if (n * cs < len) {
      // the run does not fit the clusters allocated for the spill-over: take whole clusters for it
      await this.#rc.free(host, n);
      const whole = Math.ceil(len / cs);
      const fresh = await this.#rc.allocate(whole);
      this.#cursor = { offset: fresh + len, end: fresh + whole * cs };
      return fresh;
    }
    this.#cursor = { offset: host + len, end: host + n * cs };
    return host;
  }

  /** Takes one more reference on the partly used cluster at `offset`, unless it is gone or full. */
  async #share(offset: number): Promise<boolean> {
    const cluster = Math.floor(offset / this.#g.clusterSize);
    const rc = await this.#rc.get(cluster);
    if (rc <= 0 || rc >= 2 ** Math.min(this.#g.refcountBits, 52) - 1) return false;
    await this.#rc.add(cluster, 1);
    return true;
  }
}
