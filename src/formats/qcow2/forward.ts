/**
 * A qcow2 image read from a forward-only source (a pipe, an upload): the
 * header, then the stream consumed in file order against what the tables
 * read so far name — the active L1 table, the L2 tables it names, the data
 * and compressed clusters they map; refcount structures are passed over.
 * Bytes whose role is not known yet (data before its L2 table, an L2 table
 * before the L1) go to a bounded spill and are placed when their table
 * arrives; once every table is known, unknown bytes are skipped. Each
 * cluster is handed on as a guest write as soon as it is placed.
 *
 * qemu lays images out forward (header, refcount table and block, L1, then
 * each L2 table just before its data), so the spill usually stays empty.
 * One exception is built in: compressed descriptors round their length up
 * to a sector, so a descriptor's last sector may hold the start of the next
 * compressed cluster, whose table may come later; that sector (at most 512
 * bytes a compressed cluster) is kept while tables are still pending.
 */
import { throwIfAborted } from '../../core/abort.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { OffsetSpill } from '../../io/offset-spill.js';
import type { ForwardImage, ForwardRequest, ForwardSource, GuestWrite } from '../driver.js';
import { decompressCluster } from './compressed.js';
import { isHelper, ITEM, WantQueue, type Item } from './forward-queue.js';
import { forwardLayout, headerItems, l1Items, l2Items, refcountItems, type ForwardLayout } from './forward-tables.js';
import { peekClusterBits } from './header.js';

/** Most bytes read at once while passing over or spilling unknown bytes. */
const GAP_CHUNK = 1024 * 1024;
const SECTOR = 512;
const EMPTY = new Uint8Array(0);

/** The last bytes read from the source: `[start, position)`. */
interface Tail {
  readonly start: number;
  readonly bytes: Uint8Array;
}

/**
 * Reads the header of a qcow2 image from `source` and returns the image,
 * its guest writes to be pulled in order.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED (backing file, data file, encryption)
 */
export async function readForwardQcow2(source: ForwardSource, request: ForwardRequest): Promise<ForwardImage> {
  const head = await source.readUpTo(SECTOR);
  const cs = 2 ** peekClusterBits(head);
  const rest = await source.readUpTo(cs - head.length);
  // Past the end of a short stream the header cluster reads as zeros, as QEMU reads it.
  const cluster = new Uint8Array(cs);
  cluster.set(head);
  cluster.set(rest, head.length);
  const layout = forwardLayout(cluster, request.name);
  return new ForwardQcow2(source, request, layout, { start: 0, bytes: cluster.subarray(0, head.length + rest.length) });
}

function describe(item: Item): string {
  const guest = ` (guest offset ${item.guest})`;
  switch (item.kind) {
    case ITEM.l1:
      return `L1 table at offset ${item.host}`;
    case ITEM.l2:
      return `L2 table at offset ${item.host}${guest}`;
    case ITEM.data:
      return `data cluster at offset ${item.host}${guest}`;
    case ITEM.compressed:
      return `compressed cluster at offset ${item.host}${guest}`;
    default:
      return `metadata at offset ${item.host}`;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

class ForwardQcow2 implements ForwardImage {
  readonly size: number;
  readonly #source: ForwardSource;
  readonly #name: string;
  readonly #signal: AbortSignal | undefined;
  readonly #layout: ForwardLayout;
  readonly #queue = new WantQueue();
  readonly #spill: OffsetSpill;
  #tail: Tail | undefined;
  #started = false;
  /** The item being read (a table counts as pending until it is read). */
  #current: Item | undefined;

  constructor(source: ForwardSource, request: ForwardRequest, layout: ForwardLayout, tail: Tail) {
    this.#source = source;
    this.#name = request.name;
    this.#signal = request.signal;
    this.#layout = layout;
    this.#tail = tail;
    this.size = layout.header.size;
    const s = request.spill;
    this.#spill = new OffsetSpill({ memory: s?.memory, limit: s?.limit, dir: s?.dir, name: request.name });
  }

  finalSize(): number {
    return this.size;
  }

  async *writes(): AsyncGenerator<GuestWrite> {
    if (this.#started) throw new UnsupportedError(`'${this.#name}' is read forward: its writes can be taken once`);
    this.#started = true;
    try {
      this.#queue.add(headerItems(this.#layout));
      while (this.#queue.needed > 0) {
        throwIfAborted(this.#signal);
        if (this.#queue.tables === 0) this.#forgetUnneeded();
        const item = (this.#current = this.#queue.pop()!);
        if (isHelper(item.kind)) {
          await this.#passOver(item);
          continue;
        }
        const from = this.#source.position;
        const bytes = await this.#bytesOf(item);
        const write = await this.#use(item, bytes);
        await this.#settle(item, bytes, from);
        if (write) yield write;
      }
      await this.#drain();
    } finally {
      this.#tail = undefined;
      await this.#spill.close();
    }
  }

  /** True while a table that may name more items is still to be read. */
  get #tablesPending(): boolean {
    const k = this.#current?.kind;
    return this.#queue.tables > 0 || k === ITEM.l1 || k === ITEM.l2;
  }

  get #pos(): number {
    return this.#source.position;
  }

  /** The bytes of a needed item: kept ones (tail, spill), then the stream's. */
  async #bytesOf(item: Item): Promise<Uint8Array> {
    const end = item.host + item.length;
    if (!(await this.#gap(item.host, false))) throw this.#ended(item);
    const pos = this.#pos;
    const past = item.host < pos ? await this.#past(item.host, Math.min(end, pos)) : EMPTY;
    if (!past) throw this.#passed(item);
    if (end <= pos) return past;
    const fresh = await this.#read(end - pos);
    // The last compressed cluster of a file may end before its descriptor's last sector: the decoder judges.
    if (fresh.length < end - pos && (item.kind !== ITEM.compressed || past.length + fresh.length === 0)) throw this.#ended(item);
    return concat(past, fresh);
  }

  /**
   * Reads up to `to`, spilling what a table still pending may name and
   * skipping the rest. False when the stream ends first (a helper item
   * may lie past the end; a needed one may not).
   */
  async #gap(to: number, helper: boolean): Promise<boolean> {
    while (this.#pos < to) {
      throwIfAborted(this.#signal);
      const at = this.#pos;
      const chunk = await this.#read(Math.min(GAP_CHUNK, to - at));
      if (chunk.length === 0) return helper;
      if (this.#tablesPending) await this.#spill.put(at, chunk);
    }
    return true;
  }

  async #read(n: number): Promise<Uint8Array> {
    const start = this.#pos;
    const bytes = await this.#source.readUpTo(n);
    this.#tail = { start, bytes };
    return bytes;
  }

  /** Bytes `[start, end)` already read (end ≤ position): the spill's, then the tail's; undefined when not kept. */
  async #past(start: number, end: number): Promise<Uint8Array | undefined> {
    const tail = this.#tail;
    const tailFrom = tail && tail.start + tail.bytes.length === this.#pos ? Math.max(start, Math.min(end, tail.start)) : end;
    const spilled = tailFrom > start ? await this.#spill.read(start, tailFrom - start) : EMPTY;
    if (!spilled) return undefined;
    return tail && end > tailFrom ? concat(spilled, tail.bytes.subarray(tailFrom - tail.start, end - tail.start)) : spilled;
  }

  /** What an item gives: more items (tables) or a guest write (clusters). */
  async #use(item: Item, bytes: Uint8Array): Promise<GuestWrite | undefined> {
    const l = this.#layout;
    switch (item.kind) {
      case ITEM.l1:
        this.#queue.add(l1Items(l, bytes));
        return undefined;
      case ITEM.l2:
        this.#queue.add(l2Items(l, item, bytes));
        return undefined;
      case ITEM.data:
        return { offset: item.guest, data: bytes };
      default: {
        const cs = l.g.clusterSize;
        const out = new Uint8Array(cs);
        try {
          await decompressCluster(l.header.compressionType, bytes, out, item.host);
        } catch (err) {
          // Cut short by the end of the stream: that is what went wrong, not the data.
          throw bytes.length < item.length && err instanceof CorruptImageError ? this.#ended(item) : err;
        }
        const at = item.guest % cs;
        return { offset: item.guest, data: out.subarray(at, at + item.guestLength) };
      }
    }
  }

  /**
   * Releases the spilled bytes an item used, except those a pending item
   * starts in and, while tables are pending, a compressed descriptor's last
   * sector, which is kept (spilled, when it came from the stream) for the
   * compressed cluster that may start in it.
   */
  async #settle(item: Item, bytes: Uint8Array, from: number): Promise<void> {
    const end = item.host + item.length;
    const keepSector = item.kind === ITEM.compressed && this.#queue.tables > 0;
    let keepFrom = keepSector ? Math.max(item.host, end - SECTOR) : end;
    const next = this.#queue.peek();
    if (next && next.host < keepFrom) keepFrom = Math.max(item.host, next.host);
    this.#spill.release(item.host, keepFrom - item.host);
    const freshFrom = Math.max(from, item.host, end - SECTOR);
    const have = item.host + bytes.length;
    if (keepSector && freshFrom < have) await this.#spill.put(freshFrom, new Uint8Array(bytes.subarray(freshFrom - item.host)));
  }

  /** Helper items: read the refcount table (for the blocks it names), pass over the rest. */
  async #passOver(item: Item): Promise<void> {
    const end = item.host + item.length;
    if (item.kind === ITEM.skip) {
      if (!(await this.#gap(item.host, true))) return;
      this.#spill.release(item.host, Math.min(end, this.#pos) - item.host);
      while (this.#pos < end && (await this.#read(Math.min(GAP_CHUNK, end - this.#pos))).length > 0) throwIfAborted(this.#signal);
      return;
    }
    if (!(await this.#gap(item.host, true))) return;
    const pos = this.#pos;
    const past = item.host < pos ? await this.#past(item.host, Math.min(end, pos)) : EMPTY;
    const bytes = past && end > pos ? concat(past, await this.#read(end - pos)) : past;
    this.#spill.release(item.host, Math.min(end, pos) - item.host);
    if (bytes) this.#queue.add(refcountItems(this.#layout, bytes));
  }

  /** Once every table is read, spilled bytes below the next item can no longer be named. */
  #forgetUnneeded(): void {
    if (this.#spill.size === 0) return;
    const below = Math.min(this.#pos, this.#queue.peek()?.host ?? this.#pos);
    this.#spill.release(0, below);
  }

  /** Consumes the rest of the stream (snapshots, bitmaps, padding), so the writer of a pipe sees it read. */
  async #drain(): Promise<void> {
    this.#tail = undefined;
    for (;;) {
      throwIfAborted(this.#signal);
      if ((await this.#source.readUpTo(GAP_CHUNK)).length === 0) return;
    }
  }

  #ended(item: Item): CorruptImageError {
    return new CorruptImageError(`'${this.#name}': the stream ended at offset ${this.#pos}, before the end of the ${describe(item)}`, {
      file: this.#name,
      offset: item.host,
      reason: 'stream-ended',
    });
  }

  #passed(item: Item): UnsupportedError {
    return new UnsupportedError(
      `'${this.#name}': the ${describe(item)} lies in bytes the stream has already passed (at offset ${this.#pos}); this layout cannot be read forward`,
      { file: this.#name, offset: item.host, reason: 'stream-layout' },
    );
  }
}
