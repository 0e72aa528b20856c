/**
 * Opening a QED image (bdrv_qed_do_open): the header checked in qemu's
 * order with its messages, the backing file name read from inside the
 * header clusters, unknown autoclear bits cleared by a writable open, and
 * an image left "needs check" by a crash repaired before a writable open
 * goes on (read-only opens read it as it is, as qemu allows for recovery).
 */
import { decodeName } from '../../core/byte-names.js';
import { CorruptImageError, VdiskError } from '../../core/errors.js';
import type { BackingReader, ByteStore, OpenOptions } from '../driver.js';
import { checkQed } from './check.js';
import {
  decodeQedHeader,
  encodeQedHeader,
  QED_F_BACKING_FILE,
  QED_F_NEED_CHECK,
  QED_HEADER_SIZE,
  QED_MAX_BACKING_NAME,
  validateQedHeader,
  type QedGeometry,
  type QedHeader,
} from './header.js';
import { QED_TABLE_CACHE_BYTES } from './limits.js';
import { QedTables } from './tables.js';

/** The mutable state of one open QED image. */
export interface QedState {
  readonly store: ByteStore;
  readonly filename: string;
  readonly header: QedHeader;
  readonly g: QedGeometry;
  imageSize: number;
  readonly l1Offset: number;
  /** End of the cluster-aligned part of the file: where the next cluster is allocated. */
  fileSize: number;
  readonly tables: QedTables;
  /** The backing file name as the header records it. */
  backingName: string | undefined;
  /** Reads the layers below (copy-on-write source); undefined without a backing file. */
  backingReader: BackingReader | undefined;
}

/** True when the header says the image was not closed cleanly. */
export function needsCheck(s: QedState): boolean {
  return (s.header.features & QED_F_NEED_CHECK) !== 0n;
}

/** Writes the 64 header bytes in place (the backing name after them is left alone), as qed_write_header_sync. */
export async function writeHeader(s: QedState): Promise<void> {
  await s.store.write(0, encodeQedHeader(s.header));
}

async function readBackingName(store: ByteStore, h: QedHeader): Promise<string | undefined> {
  if ((h.features & QED_F_BACKING_FILE) === 0n) return undefined;
  if (h.backingNameOffset + h.backingNameSize > h.clusterSize * h.headerSize) {
    throw new CorruptImageError('QED backing filename offset is invalid', { offset: 56 });
  }
  if (h.backingNameSize > QED_MAX_BACKING_NAME) throw new CorruptImageError('Failed to read backing filename', { offset: 60 });
  const bytes = new Uint8Array(h.backingNameSize);
  await store.read(h.backingNameOffset, bytes);
  const nul = bytes.indexOf(0);
  const name = decodeName(nul < 0 ? bytes : bytes.subarray(0, nul));
  return name === '' ? undefined : name; // qemu: an empty name is no backing file
}

/**
 * Reads and checks the header and opens the tables.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED
 */
export async function openQedState(store: ByteStore, options: OpenOptions): Promise<QedState> {
  const head = new Uint8Array(QED_HEADER_SIZE);
  await store.read(0, head);
  const { magic, header } = decodeQedHeader(head);
  const v = validateQedHeader(magic, header, await store.size());
  const backingName = await readBackingName(store, header);
  const s: QedState = {
    store,
    filename: options.filename,
    header,
    g: v.geometry,
    imageSize: v.imageSize,
    l1Offset: v.l1Offset,
    fileSize: v.fileSize,
    tables: new QedTables(store, v.geometry.tableBytes, QED_TABLE_CACHE_BYTES),
    backingName,
    backingReader: undefined,
  };
  if (options.readOnly) return s;
  // Older programs knock out autoclear bits they do not know; qemu knows none.
  if (header.autoclearFeatures !== 0n) {
    header.autoclearFeatures = 0n;
    await writeHeader(s);
    await store.flush();
  }
  if (!options.check && needsCheck(s)) await repairAtOpen(s);
  await clearNeedCheck(s);
  return s;
}

/**
 * Clears the need-check flag of a writable image: data first, then the
 * header. qemu 7.2 does this right after every writable open (its
 * need-check timer fires at the first drain), so even `check -r` finds
 * the flag already cleared whatever the check then reports.
 */
export async function clearNeedCheck(s: QedState): Promise<void> {
  if (!needsCheck(s)) return;
  await s.store.flush();
  s.header.features &= ~QED_F_NEED_CHECK;
  await writeHeader(s);
  await s.store.flush();
}

/** qemu runs a repairing check when a writable open finds the need-check flag; only a check that cannot finish fails the open. */
async function repairAtOpen(s: QedState): Promise<void> {
  try {
    const counts = await checkQed(s, { repair: 'all', log: () => {} });
    if (counts.checkErrors > 0) throw new CorruptImageError('Image corrupted');
  } catch (err) {
    if (err instanceof VdiskError && err.code === 'EABORTED') throw err;
    throw new CorruptImageError('Image corrupted', { cause: err });
  }
}
