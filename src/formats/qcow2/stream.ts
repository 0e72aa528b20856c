/**
 * qcow2, streamed: an image written strictly in order with its length
 * known first (layout in stream-layout.ts). Metadata comes first, then the
 * data clusters in guest order; with compression each cluster is
 * compressed as vdisk's writer does it, kept plain when it does not shrink.
 */
import { alignUp } from '../../core/bytes.js';
import { IoError, UnsupportedError } from '../../core/errors.js';
import type { OptionValue, StreamPlan, StreamWriter, StreamWriterRequest } from '../driver.js';
import { compressCluster } from './compressed.js';
import { makeHeader, parseCreateOptions, type Qcow2CreateParams } from './create.js';
import { serializeHeader } from './header.js';
import { encodeCompressed, HI_COPIED, makeGeometry, splitOffset, writeEntry, type Geometry } from './layout.js';
import { setRefcountEntry } from './refcount.js';
import { dataRefcounts, l2TableIndexes, placements, streamLayout, type StreamLayout } from './stream-layout.js';

/** Pieces smaller than this are gathered into one chunk before they are handed on. */
const SMALL = 64 * 1024;
const BATCH = 1024 * 1024;

/**
 * What a stream cannot carry: references to other files, encryption, and
 * preallocation (a stream has no file to allocate ahead).
 *
 * @throws {UnsupportedError} naming the option
 */
function refuseUnstreamable(o: ReadonlyMap<string, OptionValue>): void {
  const refuse = (what: string, option: string): never => {
    throw new UnsupportedError(`A qcow2 image written to a stream cannot have ${what} (${option})`);
  };
  if (o.has('backing_file')) refuse('a backing file', 'backing_file');
  if (o.has('backing_fmt')) refuse('a backing file', 'backing_fmt');
  if (o.has('data_file')) refuse('an external data file', 'data_file');
  if (o.get('data_file_raw') === true) refuse('an external data file', 'data_file_raw');
  if (o.get('encryption') === true) refuse('encryption', 'encryption');
  const crypt = [...o.keys()].find((k) => k.startsWith('encrypt.'));
  if (crypt !== undefined) refuse('encryption', crypt);
  const prealloc = o.get('preallocation');
  if (prealloc === 'metadata' || prealloc === 'falloc' || prealloc === 'full') refuse('preallocation', `preallocation=${prealloc}`);
}

/**
 * Gathers small pieces into chunks of about {@link BATCH} bytes; large data
 * pieces pass as they are. Metadata is always copied, so its generators
 * can fill one scratch buffer over and over.
 */
class Batch {
  #buf = new Uint8Array(BATCH);
  #n = 0;

  *put(bytes: Uint8Array): Generator<Uint8Array> {
    if (bytes.length < SMALL) return yield* this.copy(bytes);
    yield* this.flush();
    yield bytes;
  }

  *copy(bytes: Uint8Array): Generator<Uint8Array> {
    for (let at = 0; at < bytes.length; ) {
      const take = Math.min(bytes.length - at, BATCH - this.#n);
      this.#buf.set(bytes.subarray(at, at + take), this.#n);
      this.#n += take;
      at += take;
      if (this.#n === BATCH) yield* this.flush();
    }
  }

  /** `n` zero bytes (the buffer is fresh, so skipping ahead leaves zeros). */
  *zeros(n: number): Generator<Uint8Array> {
    while (n > 0) {
      const take = Math.min(n, BATCH - this.#n);
      this.#n += take;
      n -= take;
      if (this.#n === BATCH) yield* this.flush();
    }
  }

  *flush(): Generator<Uint8Array> {
    if (this.#n === 0) return;
    yield this.#buf.subarray(0, this.#n);
    this.#buf = new Uint8Array(BATCH);
    this.#n = 0;
  }
}

/** One cluster-sized scratch buffer, handed out zeroed each time (its user copies it away before the next). */
class Scratch {
  readonly buf: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  next(): this {
    this.buf.fill(0);
    return this;
  }
}

/** One 64-bit table entry: its index and its two 32-bit halves. */
type Entry = readonly [index: number, word: { hi: number; lo: number }];

/** A table of 64-bit entries, `clusters` clusters long, from its non-zero entries in index order, a cluster at a time (one reused buffer). */
function* tableClusters(clusters: number, g: Geometry, entries: Iterable<Entry>): Generator<Uint8Array> {
  const perCluster = g.clusterSize / 8;
  const scratch = new Scratch(g.clusterSize);
  let at = 0;
  for (const [index, { hi, lo }] of entries) {
    for (; Math.floor(index / perCluster) > at; at++) {
      yield scratch.buf;
      scratch.next();
    }
    writeEntry(scratch.view, (index % perCluster) * 8, hi, lo);
  }
  for (; at < clusters; at++) {
    yield scratch.buf;
    scratch.next();
  }
}

/** An L1 or L2 entry pointing at `offset` with the COPIED flag (refcount 1). */
function copied(offset: number): { hi: number; lo: number } {
  const { hi, lo } = splitOffset(offset);
  return { hi: (hi | HI_COPIED) >>> 0, lo };
}

function* l1Entries(plan: StreamPlan, layout: StreamLayout): Generator<Entry> {
  let j = 0;
  for (const t of l2TableIndexes(plan, layout.g)) yield [t, copied(layout.l2Offset + j++ * layout.g.clusterSize)];
}

function* reftableEntries(layout: StreamLayout): Generator<Entry> {
  for (let b = 0; b < layout.refblocks; b++) yield [b, splitOffset(layout.refblocksOffset + b * layout.g.clusterSize)];
}

/** The refcount blocks: metadata clusters once, data clusters as placed, the rest free (one reused buffer). */
function* refblocks(plan: StreamPlan, layout: StreamLayout): Generator<Uint8Array> {
  const { g } = layout;
  const data = dataRefcounts(plan, layout);
  const scratch = new Scratch(g.clusterSize);
  let c = 0;
  for (let b = 0; b < layout.refblocks; b++) {
    const block = scratch.next().buf;
    for (let i = 0; i < g.refcountBlockEntries; i++, c++) {
      const n = c < layout.metadataClusters ? 1 : (data.next().value ?? 0);
      if (n !== 0) setRefcountEntry(block, i, g.refcountBits, n);
    }
    yield block;
  }
}

/** The L2 tables, in L1 order: plain clusters COPIED, compressed ones as packed (one reused buffer). */
function* l2Tables(plan: StreamPlan, layout: StreamLayout): Generator<Uint8Array> {
  const { g } = layout;
  const scratch = new Scratch(g.clusterSize);
  const { view } = scratch;
  let table = -1;
  for (const p of placements(plan, g)) {
    const t = Math.floor(p.cluster / g.l2Entries);
    if (t !== table && table >= 0) {
      yield scratch.buf;
      scratch.next();
    }
    table = t;
    const pos = (p.cluster % g.l2Entries) * g.l2EntrySize;
    const host = layout.dataOffset + p.at;
    const { hi, lo } = p.compressed ? encodeCompressed(host, p.length, g) : copied(host);
    writeEntry(view, pos, hi, lo);
    // Extended L2: a plain cluster's 32 subclusters are all allocated; a compressed one has no bitmap.
    if (g.extendedL2 && !p.compressed) view.setUint32(pos + 12, 0xffffffff);
  }
  if (table >= 0) yield scratch.buf;
}

function headerCluster(p: Qcow2CreateParams, layout: StreamLayout, size: number): Uint8Array {
  const h = makeHeader(p, layout.g);
  h.size = alignUp(size, 512);
  h.l1Size = layout.l1Size;
  h.l1TableOffset = layout.l1Offset;
  h.refcountTableOffset = layout.reftableOffset;
  h.refcountTableClusters = layout.reftableClusters;
  const out = new Uint8Array(layout.g.clusterSize);
  out.set(serializeHeader(h));
  return out;
}

async function* emitImage(p: Qcow2CreateParams, layout: StreamLayout, plan: StreamPlan, data: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { g } = layout;
  const batch = new Batch();
  const metadata = [
    [headerCluster(p, layout, plan.size)],
    tableClusters(layout.l1Clusters, g, l1Entries(plan, layout)),
    tableClusters(layout.reftableClusters, g, reftableEntries(layout)),
    refblocks(plan, layout),
    l2Tables(plan, layout),
  ];
  for (const part of metadata) for (const cluster of part) yield* batch.copy(cluster);
  const units = data[Symbol.asyncIterator]();
  let pos = 0;
  for (const at of placements(plan, g)) {
    const next = await units.next();
    const offset = at.cluster * g.clusterSize;
    if (next.done) throw new IoError(`The data of the qcow2 stream ended at unit ${at.k} of ${plan.units.length}`, { offset });
    if (next.value.length !== at.length) throw new IoError(`A data unit of ${next.value.length} bytes where the layout placed ${at.length}`, { offset });
    yield* batch.zeros(at.at - pos);
    yield* batch.put(next.value);
    pos = at.at + at.length;
  }
  if (!(await units.next()).done) throw new IoError(`The data of the qcow2 stream has more than the ${plan.units.length} units planned`);
  yield* batch.zeros(layout.dataClusters * g.clusterSize - pos);
  yield* batch.flush();
}

/**
 * Compresses one cluster as the qcow2 writer does; a cluster that does not
 * shrink comes back whole (a full cluster's length means plain).
 */
async function packCluster(type: number, data: Uint8Array): Promise<Uint8Array> {
  return (await compressCluster(type, data)) ?? data;
}

/**
 * A qcow2 stream writer for `request` (v2 or v3, any cluster size and
 * refcount width, extended L2, zlib or zstd compression).
 *
 * @throws {InvalidArgumentError} for bad options (qemu-img's messages)
 * @throws {UnsupportedError} for what a stream cannot carry
 */
export function qcow2StreamWriter(request: StreamWriterRequest): StreamWriter {
  refuseUnstreamable(request.options);
  const p = parseCreateOptions(request.size, request.options);
  const g = makeGeometry(p.clusterBits, p.extendedL2, p.refcountOrder);
  const layouts = new WeakMap<StreamPlan, StreamLayout>();
  const layoutOf = (plan: StreamPlan): StreamLayout => {
    let l = layouts.get(plan);
    if (!l) {
      l = streamLayout({ ...plan, size: alignUp(plan.size, 512) }, g);
      layouts.set(plan, l);
    }
    return l;
  };
  return {
    unit: g.clusterSize,
    ...(request.compress ? { pack: (data: Uint8Array) => packCluster(p.compressionType, data) } : {}),
    length: (plan) => layoutOf(plan).length,
    emit: (plan, data) => emitImage(p, layoutOf(plan), plan, data),
  };
}
