/**
 * Opening a qcow2 image: header, tables and their limits (qcow2_do_open),
 * in QEMU's order and with QEMU's messages.
 */
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { OpenOptions } from '../driver.js';
import { parseBitmapDirectory, type BitmapInfo } from './bitmap.js';
import { cryptDataStore, openQcow2Crypt } from './crypt.js';
import { TableCache } from './cache.js';
import { parseHeader, peekClusterBits, type Qcow2Header } from './header.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTL2,
  l1EntriesFor,
  makeGeometry,
  type Geometry,
} from './layout.js';
import { readSnapshotTable } from './snapshot.js';
import type { Qcow2State } from './state.js';

/** qcow2_validate_table: size cap, then alignment and int64 overflow. */
export function validateTable(g: Geometry, offset: number, entries: number, entryLen: number, maxBytes: number, name: string): void {
  if (entries > maxBytes / entryLen) throw new CorruptImageError(`${name} too large`, { offset });
  if (Number.MAX_SAFE_INTEGER - entries * entryLen < offset || offset % g.clusterSize !== 0) {
    throw new CorruptImageError(`${name} offset invalid`, { offset });
  }
}

function has(h: Qcow2Header, bit: number, word: 'incompatible' | 'autoclear' = 'incompatible'): boolean {
  return (h[word] & BigInt(bit)) !== 0n;
}

/** The header cluster; past the end of a short file it reads as zeros, as QEMU reads it. */
async function readHeaderCluster(store: ByteStore): Promise<Qcow2Header> {
  const head = new Uint8Array(512);
  await store.read(0, head);
  const bits = peekClusterBits(head);
  const cluster = new Uint8Array(2 ** bits);
  await store.read(0, cluster);
  return parseHeader(cluster);
}

/** The header's table fields against their limits, as qcow2_do_open checks them (QEMU's messages). */
export function checkTables(h: Qcow2Header, g: Geometry, readOnly: boolean, forCheck = false): void {
  if (h.cryptMethod > 2) throw new UnsupportedError(`Unsupported encryption method ${h.cryptMethod}`);
  if (!readOnly && !forCheck && has(h, INCOMPAT_CORRUPT)) throw new CorruptImageError('qcow2: Image is corrupt; cannot be opened read/write');
  if (h.refcountTableClusters === 0) throw new CorruptImageError('Image does not contain a reference count table');
  validateTable(g, h.refcountTableOffset, h.refcountTableClusters, g.clusterSize, LIMITS.qcow2MaxRefcountTableBytes, 'Reference count table');
  validateTable(g, h.snapshotsOffset, h.nbSnapshots, 40, 40 * LIMITS.qcow2MaxSnapshots, 'Snapshot table');
  if (h.l1Size > LIMITS.qcow2MaxL1Bytes / 8) throw new CorruptImageError('Active L1 table too large');
  const needed = l1EntriesFor(h.size, g);
  if (needed > 0x7fffffff) throw new UnsupportedError('Image is too big');
  if (h.l1Size < needed) throw new CorruptImageError('L1 table is too small');
  validateTable(g, h.l1TableOffset, h.l1Size, 8, LIMITS.qcow2MaxL1Bytes, 'Active L1 table');
  if (has(h, INCOMPAT_EXTL2) && g.clusterBits < 14) {
    throw new CorruptImageError('Extended L2 entries require a cluster size of at least 16 KiB');
  }
}

/** Stands for a data file a describe-only open leaves closed: any I/O on it is a bug, reported as such. */
function unopenedDataFile(name: string): ByteStore {
  const refuse = (): Promise<never> => Promise.reject(new UnsupportedError(`The data file '${name}' is not open (the image was opened to be described only)`));
  return { name, readOnly: true, size: refuse, read: refuse, write: refuse, truncate: refuse, flush: refuse, close: () => Promise.resolve() };
}

/** The data file the open options give, opened (qemu opens the `data-file` child before it looks at the header's bit). */
async function givenDataFile(options: OpenOptions, owned: ByteStore[]): Promise<ByteStore | undefined> {
  const given = options.dataFile;
  if (given === undefined) return undefined;
  if (given.kind === 'reference') throw new InvalidArgumentError(`Cannot find device='${given.name}' nor node-name='${given.name}'`);
  const ds = await given.open(options.readOnly);
  owned.push(ds);
  return ds;
}

async function openDataFile(h: Qcow2Header, store: ByteStore, options: OpenOptions, owned: ByteStore[]): Promise<ByteStore> {
  // `info` never opens the data file (qemu's fix for CVE-2024-4467): describing an untrusted image touches no
  // file it names. Like qemu's BDRV_O_NO_IO open, it then checks nothing about one either (a missing name, a
  // data-file-raw bit without a data file, a data file the open options give): info shows what the header says.
  if (options.describeOnly) {
    if (!has(h, INCOMPAT_DATA_FILE)) return store;
    if (h.dataFile) options.external.declare?.(h.dataFile, 'data-file');
    return unopenedDataFile(h.dataFile ?? '');
  }
  const given = await givenDataFile(options, owned);
  if (!has(h, INCOMPAT_DATA_FILE)) {
    if (given) throw new InvalidArgumentError("'data-file' can only be set for images with an external data file");
    if (has(h, AUTOCLEAR_DATA_FILE_RAW, 'autoclear')) throw new CorruptImageError('data-file-raw requires a data file');
    return store;
  }
  if (given) return given;
  if (h.dataFile === undefined || h.dataFile === '') throw new CorruptImageError("'data-file' is required for this image");
  const ds = await options.external.open(h.dataFile, 'data-file', { readOnly: options.readOnly });
  owned.push(ds);
  return ds;
}

async function readBitmaps(h: Qcow2Header, store: ByteStore): Promise<BitmapInfo[]> {
  if (!h.bitmaps) return [];
  const dir = new Uint8Array(h.bitmaps.directorySize);
  await store.read(h.bitmaps.directoryOffset, dir);
  return parseBitmapDirectory(dir, h.bitmaps.nbBitmaps, h.bitmaps.directoryOffset);
}

/** QEMU's warning for a bitmaps extension whose autoclear bit is clear (v2 images have no autoclear bits). */
function bitmapsIgnoredWarning(version: 2 | 3): string {
  return version < 3
    ? 'This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent'
    : 'a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent';
}

/**
 * Reads and validates everything a qcow2 image needs before use.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export async function openState(store: ByteStore, options: OpenOptions): Promise<Qcow2State> {
  const h = await readHeaderCluster(store);
  if (h.bitmapsIgnored) options.onWarning?.({ code: 'bitmaps-inconsistent', message: bitmapsIgnoredWarning(h.version) });
  const g = makeGeometry(h.clusterBits, has(h, INCOMPAT_EXTL2), h.refcountOrder);
  checkTables(h, g, options.readOnly, options.check === true);
  const snapshots = h.nbSnapshots ? await readSnapshotTable(store, h.snapshotsOffset, h.nbSnapshots) : [];
  const bitmaps = await readBitmaps(h, store);
  const l1Bytes = new Uint8Array(h.l1Size * 8);
  await store.read(h.l1TableOffset, l1Bytes);
  const owned: ByteStore[] = [];
  const rawData = await openDataFile(h, store, options, owned);
  const crypt = await openQcow2Crypt(store, h, g.clusterSize, options);
  const dataStore = cryptDataStore(rawData, crypt);
  return {
    filename: options.filename,
    header: h,
    g,
    version: h.version,
    virtualSize: h.size,
    l1Bytes,
    l1: new DataView(l1Bytes.buffer),
    l1Size: h.l1Size,
    // Read-only: only mapping reads tables, and never holds one across a wait.
    l2Cache: new TableCache(store, g.clusterSize, LIMITS.qcow2L2CacheBytes, { recycle: options.readOnly && options.check !== true }),
    store,
    dataStore,
    externalData: rawData !== store,
    rawDataStore: rawData,
    crypt,
    refcounts: undefined,
    snapshots,
    bitmaps,
    dataFileRaw: has(h, AUTOCLEAR_DATA_FILE_RAW, 'autoclear'),
    ownedStores: owned,
    backingReader: undefined,
    backingSize: undefined,
  };
}
