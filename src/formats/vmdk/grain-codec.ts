/**
 * Compressed grains (streamOptimized): zlib-format deflate data (with the
 * zlib header, as QEMU's compress()/uncompress()), optionally preceded by a
 * grain marker {lba u64, size u32}, inflated and deflated on the codec pool
 * (core/codec-pool.ts). Inflation is bounded by the grain size.
 */
import type { DecodePiece } from '../../core/codec-kernels.js';
import { encodeUnitOnPool } from '../../core/codec-pool.js';
import { decodeInto, groupSpans, withSpan, type HostRange, type Span } from '../../core/compressed-run.js';
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { settleAll } from '../../core/settle.js';
import type { ByteStore } from '../driver.js';
import { GRAIN_MARKER_BYTES, SECTOR } from './layout.js';

/** Builds marker + compressed data, padded to whole sectors. */
export async function encodeGrain(lbaSector: number, data: Uint8Array): Promise<Uint8Array> {
  const z = await encodeUnitOnPool('zlib', data);
  const out = new Uint8Array(Math.ceil((GRAIN_MARKER_BYTES + z.length) / SECTOR) * SECTOR);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(lbaSector), true);
  v.setUint32(8, z.length, true);
  out.set(z, GRAIN_MARKER_BYTES);
  return out;
}

/** One metadata marker sector {val u64, size 0, type u32}. */
export function metadataMarker(val: number, type: number): Uint8Array {
  const out = new Uint8Array(SECTOR);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(val), true);
  v.setUint32(12, type, true);
  return out;
}

/** A compressed grain to read, and which of its bytes go where in the output. */
export interface GrainPiece {
  /** Where the grain (its marker, when the image has markers) starts in the file. */
  readonly host: number;
  /** Bytes the inflated grain must cover at least (less than a grain at the end of the disk). */
  readonly need: number;
  /** Where the copied bytes go in the output. */
  readonly outAt: number;
  /** First byte of the inflated grain to copy. */
  readonly from: number;
  /** Bytes copied (zeros past what the grain inflates to). */
  readonly count: number;
}

/**
 * Reads and inflates the grain at `host` into `unit` (zero-filled past the
 * inflated bytes). `need` is how many bytes the inflated grain must cover.
 */
export async function readCompressedGrain(
  store: ByteStore,
  host: number,
  markers: boolean,
  grainBytes: number,
  need: number,
  unit: Uint8Array,
): Promise<void> {
  const count = Math.min(grainBytes, unit.length);
  await readCompressedGrains(store, markers, grainBytes, [{ host, need, outAt: 0, from: 0, count }], unit);
  unit.fill(0, count);
}

/**
 * Reads and inflates `grains` into `into`: grains stored one after another
 * are read with one request and inflated as one batch on the codec pool;
 * spans run in parallel. Each grain's compressed size is bounded (its
 * marker, or LIMITS.vmdkMaxCompressedGrainFactor grains), and so is what it
 * inflates to.
 */
export async function readCompressedGrains(store: ByteStore, markers: boolean, grainBytes: number, grains: readonly GrainPiece[], into: Uint8Array): Promise<void> {
  const maxLen = grainBytes * LIMITS.vmdkMaxCompressedGrainFactor;
  const head = markers ? GRAIN_MARKER_BYTES : 0;
  const placed: (GrainPiece & HostRange)[] = grains.map((g) => ({ ...g, hostOffset: g.host, hostLength: head + maxLen }));
  await settleAll(
    groupSpans(placed, grainBytes).map((span) => withSpan(store, span, (input) => inflateSpan(store, span, input, markers, grainBytes, into))),
  );
}

/** Inflates the grains of one span read into `input`. */
async function inflateSpan(store: ByteStore, span: Span<GrainPiece & HostRange>, input: Uint8Array, markers: boolean, grainBytes: number, into: Uint8Array): Promise<void> {
  const maxLen = grainBytes * LIMITS.vmdkMaxCompressedGrainFactor;
  const head = markers ? GRAIN_MARKER_BYTES : 0;
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const pieces: DecodePiece[] = [];
  // A bad marker fails the read after the grains before it (as reading them one by one would).
  let badMarker: CorruptImageError | undefined;
  for (const g of span.units) {
    const at = g.host - span.start;
    const len = markers ? view.getUint32(at + 8, true) : maxLen;
    if (len === 0 || len > maxLen) {
      badMarker = new CorruptImageError(`Invalid compressed grain marker size ${len} at offset ${g.host}`, { file: store.name, offset: g.host });
      break;
    }
    pieces.push({ at: at + head, length: len, outAt: g.outAt, from: g.from, count: g.count });
  }
  const r = await decodeInto('zlib', grainBytes, input, pieces, into);
  if (r.failed) {
    const host = span.units[r.failed.index]?.host ?? span.start;
    throw new CorruptImageError(`Compressed grain at offset ${host} does not inflate to at most ${grainBytes} bytes`, { file: store.name, offset: host, cause: new Error(r.failed.message) });
  }
  for (const [k, n] of r.produced.entries()) {
    const g = span.units[k] as GrainPiece;
    if (n < g.need) {
      throw new CorruptImageError(`Compressed grain at offset ${g.host} inflates to ${n} bytes, fewer than the ${g.need} it must hold`, { file: store.name, offset: g.host });
    }
  }
  if (badMarker) throw badMarker;
}
