/**
 * A qcow2 image read forward, its structures turned into the items the
 * stream must deliver: pure functions over bytes (the header, the L1
 * table, the refcount table, each L2 table), with the open path's checks
 * and messages.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import type { ByteStore } from '../driver.js';
import { l1Entry, mapLoadedTable, type TableContext } from './cluster.js';
import { ITEM, type Item } from './forward-queue.js';
import { parseHeader, type Qcow2Header } from './header.js';
import { INCOMPAT_DATA_FILE, INCOMPAT_EXTL2, l1EntriesFor, makeGeometry, type Geometry } from './layout.js';
import { checkTables } from './open.js';

/** Most guest bytes of contiguous data one item covers (small clusters are read in runs). */
const DATA_RUN = 1024 * 1024;

/** What the items of an image are read against. */
export interface ForwardLayout {
  readonly header: Qcow2Header;
  readonly g: Geometry;
  /** L1 entries that map guest bytes. */
  readonly l1Entries: number;
  readonly table: TableContext;
}

/** A store nothing reads: the extents of a forward read name one, but their bytes come from the stream. */
function streamOnly(name: string): ByteStore {
  const refuse = (): Promise<never> => Promise.reject(new UnsupportedError(`'${name}' is read forward: it has no random access`));
  return { name, readOnly: true, size: refuse, read: refuse, write: refuse, truncate: refuse, flush: refuse, close: () => Promise.resolve() };
}

/**
 * Parses and checks the header cluster, refusing what a stream cannot
 * carry on its own: encryption, a backing file, an external data file.
 * Snapshots and bitmaps are left alone (only the active L1 is read).
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export function forwardLayout(cluster: Uint8Array, name: string): ForwardLayout {
  const header = parseHeader(cluster);
  const has = (bit: number): boolean => (header.incompatible & BigInt(bit)) !== 0n;
  const g = makeGeometry(header.clusterBits, has(INCOMPAT_EXTL2), header.refcountOrder);
  checkTables(header, g, true);
  if (header.cryptMethod !== 0) throw new UnsupportedError(`'${name}' is encrypted; an encrypted qcow2 image cannot be read from a stream`, { file: name, offset: 32 });
  if (header.backingFileOffset !== 0) {
    throw new UnsupportedError(`'${name}' has a backing file ('${header.backingFile ?? ''}'); an image read from a stream must stand alone`, { file: name, offset: 8 });
  }
  if (has(INCOMPAT_DATA_FILE)) throw new UnsupportedError(`'${name}' has an external data file; an image read from a stream must stand alone`, { file: name, offset: 72 });
  const table: TableContext = { g, version: header.version, dataStore: streamOnly(name), externalData: false };
  return { header, g, l1Entries: l1EntriesFor(header.size, g), table };
}

/**
 * The items the header names: the L1 table (the part that maps guest
 * bytes; the rest of its clusters is passed over) and the refcount table.
 */
export function headerItems(l: ForwardLayout): Item[] {
  const h = l.header;
  const cs = l.g.clusterSize;
  const items: Item[] = [];
  if (l.l1Entries > 0) {
    const used = l.l1Entries * 8;
    items.push({ kind: ITEM.l1, host: h.l1TableOffset, length: used, guest: 0, guestLength: 0 });
    const rest = Math.ceil((h.l1Size * 8) / cs) * cs - used;
    if (rest > 0) items.push({ kind: ITEM.skip, host: h.l1TableOffset + used, length: rest, guest: 0, guestLength: 0 });
  }
  items.push({ kind: ITEM.reftable, host: h.refcountTableOffset, length: h.refcountTableClusters * l.g.clusterSize, guest: 0, guestLength: 0 });
  return items;
}

/** The L2 tables the L1 table names. */
export function l1Items(l: ForwardLayout, bytes: Uint8Array): Item[] {
  const l1 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ctx = { l1, l1Size: l.l1Entries, g: l.g };
  const tableBytes = l.g.l2Entries * l.g.clusterSize;
  const items: Item[] = [];
  for (let i = 0; i < l.l1Entries; i++) {
    const host = l1Entry(ctx, i);
    if (host === 0) continue;
    const guest = i * tableBytes;
    items.push({ kind: ITEM.l2, host, length: l.g.clusterSize, guest, guestLength: Math.min(tableBytes, l.header.size - guest) });
  }
  return items;
}

/**
 * The refcount blocks the refcount table names, to pass over (as `skip` items). Entries that
 * no reader could follow are left out: the blocks are never needed, only
 * skipped, so a bad entry must not cost a data cluster.
 */
export function refcountItems(l: ForwardLayout, bytes: Uint8Array): Item[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cs = l.g.clusterSize;
  const items: Item[] = [];
  for (let p = 0; p + 8 <= bytes.length; p += 8) {
    const v = view.getBigUint64(p) & 0xfffffffffffffe00n;
    if (v === 0n || v > BigInt(Number.MAX_SAFE_INTEGER - cs) || Number(v) % cs !== 0) continue;
    items.push({ kind: ITEM.skip, host: Number(v), length: cs, guest: 0, guestLength: 0 });
  }
  return items;
}

/**
 * The data and compressed clusters one L2 table maps (`item` is the
 * table's own item). Contiguous data runs are cut into pieces of
 * {@link DATA_RUN} bytes (or one cluster, when larger), so the stream is
 * read in large pieces but never more than that at once; zero and
 * unallocated ranges need no bytes (nothing lies below a stream image).
 *
 * @throws {CorruptImageError} for entries the open path refuses (unaligned, zero flags in v2, bad subcluster bits)
 */
export function l2Items(l: ForwardLayout, item: Item, table: Uint8Array): Item[] {
  const cs = l.g.clusterSize;
  const run = Math.max(cs, DATA_RUN);
  const extents = mapLoadedTable(l.table, table, item.host, item.guest / cs, item.guest, item.guest + item.guestLength);
  const items: Item[] = [];
  for (const e of extents) {
    if (e.kind === 'compressed') {
      if (e.hostLength <= 0) throw new CorruptImageError(`Compressed cluster at host offset 0x${e.hostOffset.toString(16)} has an invalid size`, { offset: e.hostOffset });
      // QEMU reads at most two clusters of a descriptor; the rest cannot belong to it.
      items.push({ kind: ITEM.compressed, host: e.hostOffset, length: Math.min(e.hostLength, 2 * cs), guest: e.offset, guestLength: e.length });
    } else if (e.kind === 'data') {
      for (let at = e.offset; at < e.offset + e.length; ) {
        const next = Math.min((Math.floor(at / run) + 1) * run, e.offset + e.length);
        items.push({ kind: ITEM.data, host: e.hostOffset + (at - e.offset), length: next - at, guest: at, guestLength: next - at });
        at = next;
      }
    }
  }
  return items;
}
