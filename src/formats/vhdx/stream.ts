/**
 * vhdx, streamed: the layout create gives (header section, empty log, BAT,
 * metadata region, payload from 5 MiB past the metadata), produced
 * strictly in order, with the payload blocks that hold data appended in
 * guest order as qemu appends them. Dynamic images list those blocks
 * FULLY_PRESENT and the rest ZERO (or NOT_PRESENT with
 * block_state_zero=off); fixed images store every block.
 */
import type { StreamPlan, StreamWriter, StreamWriterRequest } from '../driver.js';
import { checkProtocolCreateOptions } from '../protocol-options.js';
import { HEADER1_OFFSET, HEADER2_OFFSET, METADATA_TABLE_SIZE, MiB, PayloadState, REGION_TABLE1_OFFSET, REGION_TABLE2_OFFSET } from './constants.js';
import { batChunks, checkBatRequest, resolveCreateOptions, vhdxPieces, type BlockEntry, type VhdxLayoutParams, type VhdxPieces } from './create.js';

/** Places pieces at fixed offsets, filling the gaps with zeros, strictly in order. */
class Placer {
  #at = 0;
  *put(offset: number, bytes: Uint8Array): Generator<Uint8Array> {
    yield* this.padTo(offset);
    yield bytes;
    this.#at += bytes.length;
  }
  *padTo(offset: number): Generator<Uint8Array> {
    while (this.#at < offset) {
      const n = Math.min(MiB, offset - this.#at);
      yield new Uint8Array(n);
      this.#at += n;
    }
  }
}

/** The BAT entry of each payload block: data blocks stored one after another from the payload offset. */
function streamEntry(p: VhdxLayoutParams, pieces: VhdxPieces, plan: StreamPlan): BlockEntry {
  const data = pieces.layout.dataOffset;
  if (p.fixed) return (block) => [PayloadState.FullyPresent, data + block * p.blockSize];
  const slot = new Map<number, number>();
  plan.units.forEach((block, k) => slot.set(block, k));
  const absent = p.useZeroBlocks ? PayloadState.Zero : PayloadState.NotPresent;
  return (block) => {
    const k = slot.get(block);
    return k === undefined ? [absent, 0] : [PayloadState.FullyPresent, data + k * p.blockSize];
  };
}

/** Everything before the payload, in file order. */
function* head(p: VhdxLayoutParams, pieces: VhdxPieces, plan: StreamPlan): Generator<Uint8Array> {
  const { layout } = pieces;
  const out = new Placer();
  yield* out.put(0, pieces.identifier);
  yield* out.put(HEADER1_OFFSET, pieces.headers[0]);
  yield* out.put(HEADER2_OFFSET, pieces.headers[1]);
  yield* out.put(REGION_TABLE1_OFFSET, pieces.regions);
  yield* out.put(REGION_TABLE2_OFFSET, pieces.regions);
  const entry = streamEntry(p, pieces, plan);
  for (const { at, bytes } of batChunks(pieces.geometry, entry)) yield* out.put(layout.batOffset + at, bytes);
  yield* out.put(layout.metadataOffset, pieces.metadata.table);
  yield* out.put(layout.metadataOffset + METADATA_TABLE_SIZE, pieces.metadata.items);
  yield* out.padTo(layout.dataOffset);
}

/** The payload: each data block whole (fixed: the last one cut at the virtual size). */
async function* payload(p: VhdxLayoutParams, data: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let at = 0;
  for await (const unit of data) {
    const n = p.fixed ? Math.min(unit.length, p.size - at) : unit.length;
    yield n === unit.length ? unit : unit.subarray(0, n);
    at += n;
  }
}

/**
 * A VHDX in order, with create's options and checks (size rounded to
 * sectors, log and block sizes rounded, block size chosen by the size when
 * 0). The headers and GUIDs are made once, so length and bytes agree.
 */
export function vhdxStreamWriter(request: StreamWriterRequest): StreamWriter {
  checkProtocolCreateOptions(request.options, new Set());
  const p = resolveCreateOptions(request);
  const pieces = vhdxPieces(p);
  checkBatRequest(pieces.layout);
  const start = pieces.layout.dataOffset;
  return {
    unit: p.blockSize,
    storesEveryUnit: p.fixed,
    length: (plan) => start + (p.fixed ? p.size : plan.units.length * p.blockSize),
    async *emit(plan, data) {
      yield* head(p, pieces, plan);
      yield* payload(p, data);
    },
  };
}
