/** The shared state of one open qcow2 image (read by mapping, changed by the writer). */
import type { ByteStore } from '../../io/byte-store.js';
import type { BackingReader } from '../driver.js';
import type { BitmapInfo } from './bitmap.js';
import type { TableCache } from './cache.js';
import type { MapContext } from './cluster.js';
import type { Qcow2Header } from './header.js';
import type { Qcow2Crypt } from './crypt.js';
import type { Geometry } from './layout.js';
import type { Refcounts } from './refcount.js';
import type { SnapshotEntry } from './snapshot.js';

/** Everything an open image knows; it is also the mapping context. */
export interface Qcow2State extends MapContext {
  readonly filename: string;
  readonly header: Qcow2Header;
  readonly g: Geometry;
  /** L1 table bytes. */
  l1Bytes: Uint8Array;
  l1: DataView;
  l1Size: number;
  virtualSize: number;
  readonly l2Cache: TableCache;
  /** Present when open for writing. */
  refcounts: Refcounts | undefined;
  /** Replaced (never mutated) when the snapshot table is rewritten. */
  snapshots: readonly SnapshotEntry[];
  readonly bitmaps: readonly BitmapInfo[];
  readonly dataFileRaw: boolean;
  /** Stores the image owns besides `store` (the data file). */
  readonly ownedStores: ByteStore[];
  backingReader: BackingReader | undefined;
  /** Virtual size of what backingReader reads (the layers below). */
  backingSize: number | undefined;
  /** The encryption of an encrypted image (`dataStore` then encrypts LUKS data; see crypt.ts). */
  readonly crypt?: Qcow2Crypt | undefined;
  /** The file data clusters live in, without the encryption view. */
  readonly rawDataStore?: ByteStore | undefined;
  /**
   * Whether space freed by snapshot operations is given back to the file
   * system (qemu's `pass-discard-snapshot`, on unless the open options turn it off).
   */
  discardSnapshot?: boolean | undefined;
}
