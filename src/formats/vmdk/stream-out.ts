/**
 * vmdk streamOptimized, streamed: the layout vdisk's append-only stream
 * writer (./stream.ts) gives a converted image, produced strictly in
 * order: header (GD at end) and descriptor, grains from 64 KiB (marker +
 * zlib data, whole sectors) in guest order, each grain table behind its
 * marker once the grains move past it, then the grain directory, the
 * footer and the end-of-stream marker. The unit is the grain; grains of
 * zeros are left out (they read as zeros).
 */
import { UnsupportedError } from '../../core/errors.js';
import type { StreamPlan, StreamWriter, StreamWriterRequest } from '../driver.js';
import { checkProtocolCreateOptions } from '../protocol-options.js';
import { createSettings, embeddedDescriptor, streamHeader } from './create.js';
import { encodeGrain, metadataMarker } from './grain-codec.js';
import { serializeVmdk4Header, type Vmdk4Header } from './header.js';
import { DEFAULT_DESC_OFFSET, GRAIN_MARKER_BYTES, MARKER_GT, SECTOR, STREAM_GRAIN_OFFSET } from './layout.js';
import { tableBytes } from './sparse.js';
import { streamTail } from './stream.js';

/**
 * The name the embedded descriptor's extent line gives the image: a
 * stream has no file name, and readers of a monolithic image take the
 * extent from the file itself, never from this name.
 */
const STREAM_NAME = 'stream.vmdk';

/** Where the grains start. */
const GRAINS_AT = STREAM_GRAIN_OFFSET * SECTOR;

/** Header and descriptor, padded to the first grain. */
function head(header: Vmdk4Header, descriptor: Uint8Array): Uint8Array {
  const out = new Uint8Array(GRAINS_AT);
  out.set(serializeVmdk4Header(header), 0);
  out.set(descriptor, DEFAULT_DESC_OFFSET * SECTOR);
  return out;
}

/** A grain table behind its marker. */
function tableBlock(t: Uint32Array): Uint8Array {
  const body = tableBytes(t);
  const sectors = Math.ceil(body.length / SECTOR);
  const out = new Uint8Array((1 + sectors) * SECTOR);
  out.set(metadataMarker(sectors, MARKER_GT), 0);
  out.set(body, SECTOR);
  return out;
}

/** Grain tables the plan's grains fill. */
function tablesUsed(plan: StreamPlan, gtes: number): number {
  let n = 0;
  let last = -1;
  for (const gi of plan.units) {
    const gdi = Math.floor(gi / gtes);
    if (gdi !== last) n++;
    last = gdi;
  }
  return n;
}

/**
 * A streamOptimized VMDK in order, with create's options (adapter_type,
 * hwversion, toolsversion; zeroed_grain is taken and, as create does for
 * this subformat, not recorded). Its grains are always compressed: `-c`
 * changes nothing. Other subformats and a backing file are refused.
 */
export function vmdkStreamWriter(request: StreamWriterRequest): StreamWriter {
  checkProtocolCreateOptions(request.options, new Set());
  const options = new Map(request.options);
  // A stream can only be streamOptimized: that is the subformat when none is given.
  if (!options.has('subformat')) options.set('subformat', 'streamOptimized');
  const s = createSettings(request.size, options);
  if (s.subformat !== 'streamOptimized') throw new UnsupportedError(`VMDK subformat '${s.subformat}' cannot be written to a stream (only streamOptimized can)`);
  if (s.backingFile !== undefined) throw new UnsupportedError('A streamed VMDK image cannot have a backing file');
  // A header of capacity 0 means "a descriptor file" to every reader: such an image could not be opened.
  if (s.size === 0) throw new UnsupportedError('A streamOptimized VMDK image cannot be empty (size 0): a VMDK header of capacity 0 is read as a descriptor file');
  const { header, gtCount } = streamHeader(s.size);
  const descriptor = embeddedDescriptor(s, STREAM_NAME);
  const gtes = header.numGtesPerGt;
  const table = tableBlock(new Uint32Array(gtes)).length;
  const tail = (at: number, gd: Uint32Array): Uint8Array => streamTail(gd, header, at);
  return {
    unit: header.granularity * SECTOR,
    // The marker's LBA is set when the grain is emitted: packing does not know where the grain goes.
    pack: (data) => encodeGrain(0, data),
    length(plan) {
      let grains = 0;
      for (const n of plan.packed ?? []) grains += n;
      return GRAINS_AT + grains + tablesUsed(plan, gtes) * table + tail(0, new Uint32Array(gtCount)).length;
    },
    async *emit(plan, data) {
      yield head(header, descriptor);
      const gd = new Uint32Array(gtCount);
      let at = GRAINS_AT;
      let current: { gdi: number; t: Uint32Array } | undefined;
      const flushTable = (): Uint8Array => {
        const block = tableBlock(current!.t);
        gd[current!.gdi] = at / SECTOR + 1;
        at += block.length;
        return block;
      };
      let k = 0;
      for await (const grain of data) {
        const gi = plan.units[k++]!;
        const gdi = Math.floor(gi / gtes);
        if (current && current.gdi !== gdi) yield flushTable();
        if (!current || current.gdi !== gdi) current = { gdi, t: new Uint32Array(gtes) };
        current.t[gi % gtes] = at / SECTOR;
        const marker = grain.slice(0, GRAIN_MARKER_BYTES);
        new DataView(marker.buffer).setBigUint64(0, BigInt(gi * header.granularity), true);
        yield marker;
        yield grain.subarray(GRAIN_MARKER_BYTES);
        at += grain.length;
      }
      if (current) yield flushTable();
      yield tail(at, gd);
    },
  };
}
