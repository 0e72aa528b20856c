/**
 * Opening a qcow image in the order of QEMU's qcow_open: header checks,
 * the encryption options and key, the table geometry, the L1 table's
 * place, then the backing file name, each with qemu's message.
 */
import { decodeName } from '../../core/byte-names.js';
import { CorruptImageError, InvalidArgumentError, IoError, VdiskError } from '../../core/errors.js';
import { lookupSecretText } from '../../core/secrets.js';
import { QcowAesCipher, qcowAesKey } from '../crypto/qcow-aes.js';
import type { BackingRef, ByteStore, OpenOptions } from '../driver.js';
import { parseQcowHeader, QCOW_CRYPT, QCOW_HEADER_SIZE, qcowGeometry, type QcowHeader } from './header.js';
import { QcowImage, type QcowState } from './image.js';
import { hostRange, QcowTables } from './tables.js';
import { QcowWriter } from './write.js';

/** Longest backing file name qcow_open reads. */
const MAX_BACKING_NAME = 1023;

/**
 * Opens a qcow image.
 *
 * @throws {CorruptImageError} ECORRUPT, {@link UnsupportedError} EUNSUPPORTED, {@link InvalidArgumentError} EINVAL
 *   (encryption options, key), {@link IoError} EIO (tables QEMU cannot address)
 */
export async function openQcow(store: ByteStore, options: OpenOptions): Promise<QcowImage> {
  const head = new Uint8Array(QCOW_HEADER_SIZE);
  await store.read(0, head);
  const header = parseQcowHeader(head);
  const cipher = encryption(header, options);
  const geometry = qcowGeometry(header);
  const l1Offset = inFile(options.filename, () => hostRange(header.l1TableOffset, geometry.l1Size * 8));
  const backing = await backingName(store, header, options.filename);
  const state: QcowState = {
    store,
    header,
    virtualSize: geometry.virtualSize,
    clusterSize: 2 ** header.clusterBits,
    tables: new QcowTables(store, l1Offset, geometry.l1Size, header.l2Bits),
    encrypted: header.cryptMethod === QCOW_CRYPT.aes,
    cipher,
    backing,
    backingReader: undefined,
  };
  const image = new QcowImage(state);
  if (!options.readOnly) image.writer = new QcowWriter(state, (offset, into) => image.readGuest(offset, into));
  return image;
}

/** Runs `f`; an EIO from it becomes qemu's nested open message. */
function inFile<T>(filename: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof VdiskError && err.code === 'EIO') throw new IoError(`Could not open '${filename}': Input/output error`, { cause: err });
    throw err;
  }
}

/**
 * The `encrypt.*` open options checked as qcow_open and the qcow crypto
 * block check them; the cipher when data will be read (an `info` open,
 * QEMU's BDRV_O_NO_IO, needs no key).
 */
function encryption(header: QcowHeader, options: OpenOptions): QcowAesCipher | undefined {
  const opts = new Map<string, string>();
  for (const [k, v] of options.runtime ?? []) if (k.startsWith('encrypt.')) opts.set(k.slice('encrypt.'.length), v);
  const format = opts.get('format');
  if (header.cryptMethod !== QCOW_CRYPT.aes) {
    if (format !== undefined) throw new InvalidArgumentError(`No encryption in image header, but options specified format '${format}'`);
    return undefined;
  }
  if (format !== undefined && format !== 'aes') throw new InvalidArgumentError(`Header reported 'aes' encryption format but options specify '${format}'`);
  for (const k of opts.keys()) if (k !== 'format' && k !== 'key-secret') throw new InvalidArgumentError(`Parameter '${k}' is unexpected`);
  if (options.describeOnly) return undefined;
  const id = opts.get('key-secret');
  if (id === undefined) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
  return new QcowAesCipher(qcowAesKey(lookupSecretText(options.secrets, id)));
}

/** The backing file name, as a C string of at most 1023 bytes; none when empty. */
async function backingName(store: ByteStore, header: QcowHeader, filename: string): Promise<BackingRef | undefined> {
  if (header.backingFileOffset === 0n) return undefined;
  const len = header.backingFileSize;
  if (len > MAX_BACKING_NAME) throw new CorruptImageError('Backing file name too long', { offset: 16 });
  const at = inFile(filename, () => hostRange(header.backingFileOffset, len));
  const bytes = new Uint8Array(len);
  if (at !== undefined) await store.read(at, bytes);
  const nul = bytes.indexOf(0);
  const name = decodeName(nul < 0 ? bytes : bytes.subarray(0, nul));
  return name === '' ? undefined : { filename: name };
}
