/**
 * Writes to a compressed (streamOptimized) extent. Grains are written once:
 * like QEMU, a write to a grain already in the file is refused. Partial
 * writes are gathered in one pending grain, which is compressed and
 * appended when the writes move to another grain or on flush, so a copy
 * loop that writes in increasing order produces a pure append stream.
 */
import { UnsupportedError } from '../../core/errors.js';
import type { CowReader } from './sparse-write.js';
import type { GrainSink } from './stream.js';

const REFUSED = 'Could not write to allocated cluster for streamOptimized';

export class CompressedWriter {
  readonly sink: GrainSink;
  #pending: { gi: number; buf: Uint8Array } | undefined;

  constructor(sink: GrainSink) {
    this.sink = sink;
  }

  get #grain(): number {
    return this.sink.ext.geom.grainBytes;
  }

  /** Bytes of grain `gi` inside the extent (the last grain may be short). */
  #grainLength(gi: number): number {
    return Math.min(this.#grain, this.sink.ext.capacity - gi * this.#grain);
  }

  async #refuseAllocated(gi: number): Promise<void> {
    if ((await this.sink.ext.gte(gi)) !== 0) throw new UnsupportedError(REFUSED, { file: this.sink.ext.store.name });
  }

  /** Writes `data` at extent-relative `rel`; `cow` fills the unwritten part of a new grain. */
  async write(rel: number, data: Uint8Array, base: number, cow: CowReader | undefined): Promise<void> {
    const g = this.#grain;
    let pos = 0;
    while (pos < data.length) {
      const off = rel + pos;
      const gi = Math.floor(off / g);
      const inGrain = off - gi * g;
      const n = Math.min(g - inGrain, data.length - pos);
      const piece = data.subarray(pos, pos + n);
      const len = this.#grainLength(gi);
      if (this.#pending?.gi === gi) {
        this.#pending.buf.set(piece, inGrain);
      } else {
        await this.#refuseAllocated(gi);
        await this.flushPending();
        if (inGrain === 0 && n >= len) {
          await this.sink.emit(gi, piece.subarray(0, len));
        } else {
          const buf = new Uint8Array(len);
          if (cow) await cow(base + gi * g, buf);
          buf.set(piece, inGrain);
          this.#pending = { gi, buf };
        }
      }
      pos += n;
    }
  }

  /** Writes one whole grain compressed (`rel` grain-aligned). */
  async writeCompressed(rel: number, data: Uint8Array): Promise<void> {
    const gi = Math.floor(rel / this.#grain);
    if (this.#pending?.gi === gi) this.#pending = undefined;
    await this.#refuseAllocated(gi);
    await this.flushPending();
    const len = this.#grainLength(gi);
    let grain = data.subarray(0, len);
    if (grain.length < len) {
      grain = new Uint8Array(len);
      grain.set(data);
    }
    await this.sink.emit(gi, grain);
  }

  /** Makes the range read as zeros: unallocated grains without a backing file already do. */
  async writeZeroes(rel: number, length: number, base: number, cow: CowReader | undefined): Promise<void> {
    const g = this.#grain;
    let pos = rel;
    while (pos < rel + length) {
      const gi = Math.floor(pos / g);
      const inGrain = pos - gi * g;
      const n = Math.min(g - inGrain, rel + length - pos);
      if (this.#pending?.gi === gi) this.#pending.buf.fill(0, inGrain, inGrain + n);
      else if (cow || (await this.sink.ext.gte(gi)) !== 0) await this.write(pos, new Uint8Array(n), base, cow);
      pos += n;
    }
  }

  /** Compresses and appends the pending grain, if any. */
  async flushPending(): Promise<void> {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    await this.sink.emit(p.gi, p.buf);
  }

  /** Pending grain, then tables, directory and footer. */
  async flush(): Promise<void> {
    await this.flushPending();
    await this.sink.finish();
  }
}
