/**
 * `create -f qcow` as qcow_co_create_opts and qcow_co_create do it: the
 * legacy `encryption` flag folded into `encrypt.format`, the size rounded up
 * to whole sectors, 4 KiB clusters with 4 KiB L2 tables (512-byte clusters
 * and 32 KiB L2 tables with a backing file, so that writes never copy
 * unmodified sectors), the header, the backing file name right after it
 * and a zeroed L1 table at the next 8-byte boundary.
 */
import { DRIVER_NAMES } from '../blockdev-drivers.js';
import { encodeName } from '../../core/byte-names.js';
import { alignUp } from '../../core/bytes.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { lookupSecretText } from '../../core/secrets.js';
import type { ByteStore, CreateRequest, OptionSpec, OptionValue } from '../driver.js';
import { QCOW_CRYPT, QCOW_HEADER_SIZE, QCOW_MAX_L1_ENTRIES, serializeQcowHeader } from './header.js';

/** qcow's create options, in qemu's list order (qcow_create_opts). */
export const QCOW_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: 'Format of the backing image' },
  { name: 'encryption', type: 'bool', help: "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
  { name: 'encrypt.format', type: 'string', help: "Encrypt the image, format choices: 'aes'" },
  { name: 'encrypt.key-secret', type: 'string', help: 'ID of the secret that provides the AES encryption key' },
];

const ZEROS = new Uint8Array(1024 * 1024);

/** The checked create parameters. */
interface QcowCreateParams {
  readonly size: number;
  readonly backingFile: string | undefined;
  readonly clusterBits: number;
  readonly l2Bits: number;
  /** The secret of an AES image. */
  readonly keySecret: string | undefined;
}

/**
 * Checks the options in the order qemu's option renames, QAPI visit and
 * qcow_co_create meet them.
 *
 * @throws {InvalidArgumentError} with qemu-img's messages
 */
function parseQcowCreate(size: number, o: ReadonlyMap<string, OptionValue>): QcowCreateParams {
  const backingFmt = o.get('backing_fmt');
  if (typeof backingFmt === 'string' && !DRIVER_NAMES.has(backingFmt)) throw new InvalidArgumentError(`unrecognized backing format '${backingFmt}'`);
  let format = o.get('encrypt.format') as string | undefined;
  if (o.get('encryption') === true) {
    if (format !== undefined) throw new InvalidArgumentError("'encrypt.format' and its alias 'encryption' can't be used at the same time");
    format = 'aes';
  }
  if (format === undefined && o.has('encrypt.key-secret')) throw new InvalidArgumentError("Parameter 'encrypt.format' is missing");
  if (format !== undefined && format !== 'aes' && format !== 'qcow' && format !== 'luks') {
    throw new InvalidArgumentError(`Parameter 'format' does not accept value '${format}'`);
  }
  const rounded = alignUp(size, 512);
  if (rounded === 0) throw new InvalidArgumentError('Image size is too small, cannot be zero length');
  if (format === 'luks') throw new InvalidArgumentError('Unsupported encryption format');
  const given = o.get('backing_file') as string | undefined;
  // a backing file makes 512-byte clusters even when it is vvfat's `fat:`, which is not recorded
  const backed = given !== undefined;
  const p: QcowCreateParams = {
    size: rounded,
    backingFile: given === 'fat:' ? undefined : given,
    clusterBits: backed ? 9 : 12,
    l2Bits: backed ? 12 : 9,
    keySecret: undefined,
  };
  if (l1Entries(p) > QCOW_MAX_L1_ENTRIES) throw new InvalidArgumentError("The image size is too large for file format 'qcow'");
  if (format === undefined) return p;
  const keySecret = o.get('encrypt.key-secret') as string | undefined;
  if (keySecret === undefined) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
  return { ...p, keySecret };
}

function l1Entries(p: Pick<QcowCreateParams, 'size' | 'clusterBits' | 'l2Bits'>): number {
  return Math.ceil(p.size / 2 ** (p.clusterBits + p.l2Bits));
}

/** Writes a new qcow image as `qemu-img create -f qcow` does. */
export async function createQcow(store: ByteStore, request: CreateRequest): Promise<void> {
  const p = parseQcowCreate(request.size, request.options);
  // the key is only checked to exist: qcow AES keeps no key material in the image
  if (p.keySecret !== undefined) lookupSecretText(request.secrets, p.keySecret);
  const name = p.backingFile === undefined ? undefined : encodeName(p.backingFile);
  const headerSize = alignUp(QCOW_HEADER_SIZE + (name?.length ?? 0), 8);
  const header = serializeQcowHeader({
    backingFileOffset: name ? QCOW_HEADER_SIZE : 0,
    backingFileSize: name?.length ?? 0,
    size: p.size,
    clusterBits: p.clusterBits,
    l2Bits: p.l2Bits,
    cryptMethod: p.keySecret === undefined ? QCOW_CRYPT.none : QCOW_CRYPT.aes,
    l1TableOffset: headerSize,
  });
  await store.write(0, header);
  if (name) await store.write(QCOW_HEADER_SIZE, name);
  // the L1 table in whole zeroed sectors, as qemu writes it
  const l1Bytes = alignUp(l1Entries(p) * 8, 512);
  for (let done = 0; done < l1Bytes; done += ZEROS.length) await store.write(headerSize + done, ZEROS.subarray(0, Math.min(ZEROS.length, l1Bytes - done)));
}
