/**
 * Writing a VMDK image: requests are split at extent boundaries; flat
 * extents are written in place, sparse extents allocate grains, compressed
 * extents append. The first write of each open gives the image a new CID.
 */
import { UnsupportedError } from '../../core/errors.js';
import type { ImageWriter } from '../driver.js';
import { randomCid, writeCid } from './cid.js';
import { CompressedWriter } from './compressed-writer.js';
import { type ExtentHandle, findExtent } from './extent.js';
import type { VmdkImage } from './image.js';
import { appendCompressedInPlace, writeSparse, writeZeroesSparse } from './sparse-write.js';
import { openStreamSink, type GrainSink } from './stream.js';

const ZERO_CHUNK = 1024 * 1024;

function refuse(e: ExtentHandle): void {
  if (e.readOnly) throw new UnsupportedError(`VMDK extent '${e.filename}' is read-only`, { file: e.filename });
  if (!e.store) throw new UnsupportedError(`Cannot write data to a ZERO extent of the VMDK image`, { file: e.filename });
}

async function eachExtent(image: VmdkImage, offset: number, length: number, fn: (e: ExtentHandle, rel: number, n: number, pos: number) => Promise<void>): Promise<void> {
  let pos = 0;
  while (pos < length) {
    const e = findExtent(image.extents, offset + pos);
    if (!e) throw new UnsupportedError(`No VMDK extent holds guest offset ${offset + pos}`);
    const rel = offset + pos - e.start;
    const n = Math.min(length - pos, e.length - rel);
    await fn(e, rel, n, pos);
    pos += n;
  }
}

class VmdkWriter implements ImageWriter {
  readonly #image: VmdkImage;
  #cidWritten = false;

  constructor(image: VmdkImage) {
    this.#image = image;
  }

  /** QEMU gives the image a new CID on the first write of each open (not for append-only stream files). */
  async #touch(): Promise<void> {
    if (this.#cidWritten) return;
    this.#cidWritten = true;
    const state = this.#image.state;
    if (state.streamHeader) return;
    const cid = randomCid();
    await writeCid(state.descriptor, cid);
    state.cid = cid;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const cow = await this.#image.cowReader();
    await eachExtent(this.#image, offset, data.length, async (e, rel, n, pos) => {
      refuse(e);
      const piece = data.subarray(pos, pos + n);
      if (e.compressedWriter) await e.compressedWriter.write(rel, piece, e.start, cow);
      else if (e.sparse) await writeSparse(e.sparse, rel, piece, e.start, cow);
      else await e.store?.write(e.flatOffset + rel, piece);
    });
    await this.#touch();
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const cow = await this.#image.cowReader();
    await eachExtent(this.#image, offset, length, async (e, rel, n) => {
      if (!e.store) return; // ZERO extents read as zeros already
      refuse(e);
      if (e.compressedWriter) await e.compressedWriter.writeZeroes(rel, n, e.start, cow);
      else if (e.sparse) await writeZeroesSparse(e.sparse, rel, n, e.start, cow);
      else await zeroFlat(e, rel, n);
    });
    await this.#touch();
  }

  async writeCompressed(offset: number, data: Uint8Array): Promise<void> {
    const e = findExtent(this.#image.extents, offset);
    if (e?.compressedWriter && data.length <= e.length - (offset - e.start)) {
      await e.compressedWriter.writeCompressed(offset - e.start, data);
      await this.#touch();
      return;
    }
    await this.write(offset, data);
  }
}

async function zeroFlat(e: ExtentHandle, rel: number, n: number): Promise<void> {
  const chunk = new Uint8Array(Math.min(n, ZERO_CHUNK));
  for (let off = 0; off < n; off += chunk.length) {
    const len = Math.min(chunk.length, n - off);
    await e.store?.write(e.flatOffset + rel + off, chunk.subarray(0, len));
  }
}

/** Makes `image` writable: sets up appenders for compressed extents and the writer. */
export async function enableWrites(image: VmdkImage): Promise<void> {
  const state = image.state;
  for (const e of state.extents) {
    const sparse = e.sparse;
    if (!sparse?.geom.compressed || e.readOnly) continue;
    let sink: GrainSink;
    if (state.streamHeader) sink = await openStreamSink(sparse, state.streamHeader);
    else sink = { ext: sparse, emit: (gi, data) => appendCompressedInPlace(sparse, gi, data), finish: async () => undefined };
    e.compressedWriter = new CompressedWriter(sink);
  }
  // Compressed writes to extents that do not compress are plain writes, as in qemu (`convert -c` to monolithicSparse).
  image.writer = new VmdkWriter(image);
}
