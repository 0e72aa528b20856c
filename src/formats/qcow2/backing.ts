/**
 * Whole-header rewrites (qcow2_update_header): the backing file name and
 * format (rebase), and the header changes amend makes. The header cluster
 * is written in one write and flushed, so a crash leaves the old header or
 * the new one.
 */
import { encodeName } from '../../core/byte-names.js';
import { InvalidArgumentError, UnsupportedError, VdiskError } from '../../core/errors.js';
import type { BackingRef } from '../driver.js';
import { serializeHeader, type Qcow2Header } from './header.js';
import { AUTOCLEAR_DATA_FILE_RAW } from './layout.js';
import type { Qcow2State } from './state.js';

/** qemu's limit on a backing file name (bytes, as strlen checks it). */
const MAX_BACKING_NAME = 1023;

/**
 * Serializes `h` into a full header cluster and writes it at offset 0 in one
 * write, then flushes. On failure the in-memory header is restored.
 *
 * @throws {UnsupportedError} "No space left in the file header" when it does not fit in one cluster
 */
export async function rewriteHeader(s: Qcow2State, h: Qcow2Header = s.header): Promise<void> {
  const saved = { offset: h.backingFileOffset, size: h.backingFileSize };
  let bytes: Uint8Array;
  try {
    bytes = serializeHeader(h);
  } catch (err) {
    h.backingFileOffset = saved.offset;
    h.backingFileSize = saved.size;
    if (err instanceof VdiskError) throw new UnsupportedError('No space left in the file header', { cause: err, file: s.filename });
    throw err;
  }
  const cluster = new Uint8Array(s.g.clusterSize);
  cluster.set(bytes);
  await s.store.write(0, cluster);
  await s.store.flush();
}

/**
 * Records `ref` as the image's backing file (or none). The caller has
 * flushed everything the new name depends on (rebase's copied clusters).
 *
 * @throws {InvalidArgumentError} EINVAL for a name qemu refuses (too long, or data-file-raw with a backing file)
 * @throws {UnsupportedError} EUNSUPPORTED when the header would not fit in the first cluster
 */
export async function setQcow2Backing(s: Qcow2State, ref: BackingRef | undefined): Promise<void> {
  const h = s.header;
  if (ref && (h.autoclear & BigInt(AUTOCLEAR_DATA_FILE_RAW)) !== 0n) {
    throw new InvalidArgumentError('Invalid argument', { file: s.filename }); // data-file-raw images cannot have a backing file
  }
  if (ref && encodeName(ref.filename).length > MAX_BACKING_NAME) throw new InvalidArgumentError('Invalid argument', { file: s.filename });
  const old = { file: h.backingFile, format: h.backingFormat };
  h.backingFile = ref?.filename;
  h.backingFormat = ref?.format;
  try {
    await rewriteHeader(s);
  } catch (err) {
    h.backingFile = old.file;
    h.backingFormat = old.format;
    throw err;
  }
}
