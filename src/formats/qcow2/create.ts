/**
 * qcow2 create (qcow2_co_create): every qemu-img 7.2 option, validated with
 * qemu's messages, then a fresh image laid out as QEMU does (header,
 * refcount table, refcount block, L1) and optional preallocation.
 */
import { checkBackingFormatOption } from '../blockdev-drivers.js';
import { encodeName } from '../../core/byte-names.js';
import { alignUp } from '../../core/bytes.js';
import { InvalidArgumentError, VdiskError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { asStep, systemErrno } from '../../core/strerror.js';
import { truncateLikeQemu } from '../../io/truncate.js';
import type { ByteStore, CreateRequest, OptionSpec, OptionValue } from '../driver.js';
import { QEMU_FEATURE_NAMES, peekClusterBits, serializeHeader, type Qcow2Header } from './header.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTL2,
  l1EntriesFor,
  makeGeometry,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH,
  EXT_CRYPTO,
  type Geometry,
} from './layout.js';
import { lookupSecretText } from '../../core/secrets.js';
import { newLuksHeader, storeLuksKey, writeLuksHeader } from '../crypto/luks-block.js';
import type { LuksHeader } from '../crypto/luks-header.js';
import { luksCreateOptions } from '../crypto/luks-options.js';
import { LUKS_SECTOR } from '../crypto/luks-sector.js';
import { growClusters } from './grow.js';
import { openState } from './open.js';
import { Refcounts, setRefcountEntry } from './refcount.js';
import { createWriter } from './writer-open.js';

const V3_HINT = '(use version=v3 or greater)';

/** The `-o` options, in the order qemu-img prints them in its Formatting line. */
export const QCOW2_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'encryption', type: 'bool', help: "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
  { name: 'encrypt.format', type: 'string', help: "Encrypt the image, format choices: 'aes', 'luks'" },
  { name: 'encrypt.key-secret', type: 'string', help: 'ID of secret providing qcow AES key or LUKS passphrase' },
  { name: 'encrypt.cipher-alg', type: 'string', help: 'Name of encryption cipher algorithm' },
  { name: 'encrypt.cipher-mode', type: 'string', help: 'Name of encryption cipher mode' },
  { name: 'encrypt.ivgen-alg', type: 'string', help: 'Name of IV generator algorithm' },
  { name: 'encrypt.ivgen-hash-alg', type: 'string', help: 'Name of IV generator hash algorithm' },
  { name: 'encrypt.hash-alg', type: 'string', help: 'Name of encryption hash algorithm' },
  { name: 'encrypt.iter-time', type: 'number', help: 'Time to spend in PBKDF in milliseconds' },
  { name: 'cluster_size', type: 'size', help: 'qcow2 cluster size', default: '65536' },
  { name: 'extended_l2', type: 'bool', help: 'Extended L2 tables', default: 'off' },
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off, metadata, falloc, full)' },
  { name: 'compression_type', type: 'string', help: 'Compression method used for image cluster compression', default: 'zlib' },
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'compat', type: 'string', help: 'Compatibility level (v2 [0.10] or v3 [1.1])' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: 'Image format of the base image' },
  { name: 'data_file', type: 'string', help: 'File name of an external data file' },
  { name: 'data_file_raw', type: 'bool', help: 'The external data file must stay valid as a raw image' },
  { name: 'lazy_refcounts', type: 'bool', help: 'Postpone refcount updates', default: 'off' },
  { name: 'refcount_bits', type: 'number', help: 'Width of a reference count entry in bits', default: '16' },
];

/** Validated create parameters. */
export interface Qcow2CreateParams {
  size: number;
  version: 2 | 3;
  clusterBits: number;
  extendedL2: boolean;
  preallocation: 'off' | 'metadata' | 'falloc' | 'full';
  compressionType: number;
  backingFile: string | undefined;
  backingFmt: string | undefined;
  dataFile: string | undefined;
  dataFileRaw: boolean;
  lazyRefcounts: boolean;
  refcountOrder: number;
  /** `encrypt.format` (`encryption=on` is `aes`). */
  encryption?: 'aes' | 'luks' | undefined;
}

function str(o: ReadonlyMap<string, OptionValue>, k: string): string | undefined {
  const v = o.get(k);
  return v === undefined ? undefined : String(v);
}

function bool(o: ReadonlyMap<string, OptionValue>, k: string): boolean {
  const v = o.get(k);
  return v === true || v === 'on';
}

function enumValue<T extends string>(o: ReadonlyMap<string, OptionValue>, key: string, param: string, allowed: readonly T[], def: T): T {
  const v = str(o, key);
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) throw new InvalidArgumentError(`Parameter '${param}' does not accept value '${v}'`);
  return v as T;
}

/**
 * Checks the options as qcow2_co_create does and returns the parameters.
 *
 * @throws {InvalidArgumentError} with qemu-img's messages
 * @throws {UnsupportedError} for encryption
 */
export function parseCreateOptions(size: number, o: ReadonlyMap<string, OptionValue>): Qcow2CreateParams {
  if (o.get('encryption') === true && o.has('encrypt.format')) {
    throw new InvalidArgumentError("'encrypt.format' and its alias 'encryption' can't be used at the same time");
  }
  // The rest in the order qemu's QAPI visitor reads BlockdevCreateOptionsQcow2.
  const compat = enumValue(o, 'compat', 'version', ['0.10', 'v2', '1.1', 'v3'] as const, '1.1');
  const version = compat === '0.10' || compat === 'v2' ? 2 : 3;
  const backingFmt = str(o, 'backing_fmt');
  checkBackingFormatOption(backingFmt);
  const encrypted = encryptionFormat(o);
  const preallocation = enumValue(o, 'preallocation', 'preallocation', ['off', 'metadata', 'falloc', 'full'] as const, 'off');
  if (Number.isNaN(o.get('refcount_bits'))) throw new InvalidArgumentError("Parameter 'refcount-bits' expects integer");
  const ctype = enumValue(o, 'compression_type', 'compression-type', ['zlib', 'zstd'] as const, 'zlib');
  const clusterSize = Number(o.get('cluster_size') ?? 65536);
  const clusterBits = Math.log2(clusterSize);
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) {
    throw new InvalidArgumentError('Cluster size must be a power of two between 512 and 2048k');
  }
  const extendedL2 = bool(o, 'extended_l2');
  if (extendedL2 && version < 3) throw new InvalidArgumentError(`Extended L2 entries are only supported with compatibility level 1.1 and above ${V3_HINT}`);
  if (extendedL2 && clusterSize < 16384) throw new InvalidArgumentError('Extended L2 entries are only supported with cluster sizes of at least 16384 bytes');
  const refcountBits = Number(o.get('refcount_bits') ?? 16);
  const refcountOrder = Math.log2(refcountBits);
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw new InvalidArgumentError('Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (version < 3 && refcountBits !== 16) {
    throw new InvalidArgumentError(`Different refcount widths than 16 bits require compatibility level 1.1 or above ${V3_HINT}`);
  }
  const p: Qcow2CreateParams = {
    size: alignUp(size, 512),
    version,
    clusterBits,
    extendedL2,
    preallocation,
    compressionType: ctype === 'zstd' ? COMPRESSION_ZSTD : COMPRESSION_ZLIB,
    backingFile: str(o, 'backing_file'),
    backingFmt,
    dataFile: str(o, 'data_file'),
    dataFileRaw: bool(o, 'data_file_raw'),
    lazyRefcounts: bool(o, 'lazy_refcounts'),
    refcountOrder,
  };
  checkCombinations(p);
  if (encrypted && !o.has('encrypt.key-secret')) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
  return { ...p, encryption: encrypted ? (o.get('encryption') === true ? 'aes' : (str(o, 'encrypt.format') as 'aes' | 'luks')) : undefined };
}

/** Whether the image is to be encrypted (`encryption=on` is `encrypt.format=aes`), with qemu's messages for bad encrypt.* options. */
function encryptionFormat(o: ReadonlyMap<string, OptionValue>): boolean {
  const format = o.get('encryption') === true ? 'aes' : str(o, 'encrypt.format');
  if (format === undefined) {
    if ([...o.keys()].some((k) => k.startsWith('encrypt.'))) throw new InvalidArgumentError("Parameter 'encrypt.format' is missing");
    return false;
  }
  if (format !== 'aes' && format !== 'luks') throw new InvalidArgumentError(`Parameter 'format' does not accept value '${format}'`);
  return true;
}

function checkCombinations(p: Qcow2CreateParams): void {
  if (p.backingFile !== undefined && p.preallocation !== 'off' && !p.extendedL2) {
    throw new InvalidArgumentError('Backing file and preallocation can only be used at the same time if extended_l2 is on');
  }
  if (p.backingFmt !== undefined && p.backingFile === undefined) throw new InvalidArgumentError('Backing format cannot be used without backing file');
  if (p.lazyRefcounts && p.version < 3) throw new InvalidArgumentError(`Lazy refcounts only supported with compatibility level 1.1 and above ${V3_HINT}`);
  if (p.dataFile !== undefined && p.version < 3) throw new InvalidArgumentError(`External data files are only supported with compatibility level 1.1 and above ${V3_HINT}`);
  if (p.dataFileRaw && p.dataFile === undefined) throw new InvalidArgumentError('data-file-raw requires data-file');
  if (p.dataFileRaw && p.backingFile !== undefined) throw new InvalidArgumentError('Backing file and data-file-raw cannot be used at the same time');
  if (p.dataFileRaw && p.preallocation === 'off') p.preallocation = 'metadata';
  if (p.compressionType !== COMPRESSION_ZLIB && p.version < 3) {
    throw new InvalidArgumentError(`Non-zlib compression type is only supported with compatibility level 1.1 and above ${V3_HINT}`);
  }
  const g = makeGeometry(p.clusterBits, p.extendedL2, p.refcountOrder);
  if (l1EntriesFor(p.size, g) * 8 > LIMITS.qcow2MaxL1Bytes) {
    throw new InvalidArgumentError("The image size is too large for file format 'qcow2' (try using a larger cluster size)");
  }
  // qemu finds this out once the image exists, when it records the backing file (qcow2_change_backing_file's EINVAL).
  if (p.backingFile !== undefined && encodeName(p.backingFile).length > LIMITS.maxBackingNameBytes) {
    throw new InvalidArgumentError(`Could not assign backing file '${p.backingFile}' with format '${p.backingFmt ?? '(null)'}': Invalid argument`);
  }
}

/** The header of a new image (no tables yet: the caller sets their offsets and sizes). */
export function makeHeader(p: Qcow2CreateParams, g: Geometry): Qcow2Header {
  let incompatible = 0n;
  if (p.extendedL2) incompatible |= BigInt(INCOMPAT_EXTL2);
  if (p.dataFile !== undefined) incompatible |= BigInt(INCOMPAT_DATA_FILE);
  if (p.compressionType !== COMPRESSION_ZLIB) incompatible |= BigInt(INCOMPAT_COMPRESSION);
  return {
    version: p.version,
    backingFileOffset: 0,
    backingFileSize: 0,
    backingFile: p.backingFile,
    clusterBits: p.clusterBits,
    size: 0,
    cryptMethod: 0,
    l1Size: 0,
    l1TableOffset: 0,
    refcountTableOffset: g.clusterSize,
    refcountTableClusters: 1,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatible,
    compatible: p.lazyRefcounts ? BigInt(COMPAT_LAZY_REFCOUNTS) : 0n,
    autoclear: p.dataFileRaw ? BigInt(AUTOCLEAR_DATA_FILE_RAW) : 0n,
    refcountOrder: p.refcountOrder,
    headerLength: p.version === 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH,
    compressionType: p.compressionType,
    backingFormat: p.backingFmt,
    dataFile: p.dataFile,
    featureNames: [...QEMU_FEATURE_NAMES],
    bitmaps: undefined,
    bitmapsIgnored: false,
    crypto: undefined,
    unknownExtensions: [],
  };
}

/** Writes header, refcount table, first refcount block and L1 table. */
async function layout(store: ByteStore, p: Qcow2CreateParams, crypt: NewEncryption | undefined): Promise<void> {
  const g = makeGeometry(p.clusterBits, p.extendedL2, p.refcountOrder);
  const cs = g.clusterSize;
  const h = makeHeader(p, g);
  await store.truncate(0);
  // The header's whole cluster is written, as qemu does (the file's allocation then matches its).
  const head = new Uint8Array(cs);
  head.set(serializeHeader(h));
  // qcow2_co_create's words for its first writes failing for a system reason (the cause stays: create words EFBIG its own way).
  await asStep('Could not write qcow2 header', store.write(0, head));
  const table = new Float64Array(cs / 8);
  table[0] = 2 * cs;
  const reftable = new Uint8Array(cs);
  new DataView(reftable.buffer).setBigUint64(0, BigInt(2 * cs));
  const block = new Uint8Array(cs);
  for (let i = 0; i < 3; i++) setRefcountEntry(block, i, g.refcountBits, 1);
  await asStep('Could not write refcount table', store.write(cs, reftable).then(() => store.write(2 * cs, block)));
  const hdr = {
    offset: cs,
    clusters: 1,
    update: async (offset: number, clusters: number) => {
      h.refcountTableOffset = offset;
      h.refcountTableClusters = clusters;
      await store.write(0, serializeHeader(h));
    },
  };
  const rc = new Refcounts(store, g, table, hdr);
  const l1Size = l1EntriesFor(p.size, g);
  if (l1Size > 0) {
    const l1Bytes = l1Size * 8;
    // qemu makes the L1 table (its refcounts, then the table) when it grows the new image to its size (qcow2_co_truncate).
    const makeL1 = async (): Promise<void> => {
      h.l1TableOffset = await rc.allocate(Math.ceil(l1Bytes / cs));
      await store.write(h.l1TableOffset, new Uint8Array(l1Bytes));
    };
    await asStep('Could not resize image: Failed to grow the L1 table', makeL1());
  }
  if (crypt) await setUpEncryption(store, h, rc, crypt);
  await rc.writeBack();
  h.l1Size = l1Size;
  h.size = p.size;
  await store.write(0, serializeHeader(h));
  await store.flush();
}

/**
 * Creates a qcow2 image on the empty, writable `store`.
 *
 * @throws {InvalidArgumentError} EINVAL for bad options (qemu's messages)
 * @throws {UnsupportedError} EUNSUPPORTED for encryption
 */
export async function createQcow2(store: ByteStore, request: CreateRequest): Promise<void> {
  const p = parseCreateOptions(request.size, request.options);
  if (p.dataFile !== undefined) {
    // Emptied, then grown to the size: at once without preallocation, else as the clusters are mapped.
    const ds = await request.external.open(p.dataFile, 'data-file', { readOnly: false, create: true });
    try {
      await ds.truncate(0);
      if (p.preallocation === 'off') await truncateLikeQemu(ds, p.size);
      await ds.flush();
    } finally {
      await ds.close();
    }
  }
  await layout(store, p, await newEncryption(p, request));
  // qemu reopens the new image before anything else (qcow2_co_create): a target that keeps nothing (/dev/null) fails as there.
  const written = new Uint8Array(V2_HEADER_LENGTH);
  await store.read(0, written);
  peekClusterBits(written);
  if (p.preallocation === 'off') return;
  // qemu grows the empty image with the preallocation mode (qcow2_co_truncate).
  const secret = request.options.get('encrypt.key-secret');
  const runtime: [string, string][] = p.encryption && secret !== undefined ? [['encrypt.key-secret', String(secret)]] : [];
  const state = await openState(store, { readOnly: false, filename: request.filename, external: request.external, secrets: request.secrets, runtime });
  try {
    const writer = await createWriter(state);
    const access = await writer.clusterAccess();
    await access.guard(() => growClusters(state, access, { oldSize: 0, newSize: p.size }, p.preallocation, false)).catch((err: unknown) => {
      throw growthError(err);
    });
    await writer.close();
  } finally {
    await Promise.allSettled(state.ownedStores.map((s) => s.close()));
  }
}

/**
 * qcow2_co_create's words for a failed growth of the new image to its size:
 * blk_co_truncate's own (worded where they fail: prealloc.ts), after
 * "Could not resize image: ". Resize says them without it.
 */
function growthError(err: unknown): unknown {
  const worded = err instanceof VdiskError && (systemErrno(err) !== undefined || err.message.startsWith('Failed to resize underlying file'));
  return worded ? err.rephrase(`Could not resize image: ${err.message}`) : err;
}

/** What an encrypted image's create writes: the cipher and, for LUKS, the header to place. */
type NewEncryption = { kind: 'aes' } | { kind: 'luks'; header: LuksHeader; key: Buffer; password: Uint8Array; iterTime: number };

/** Checks the encrypt.* options and the secret, and makes a LUKS header (the slow PBKDF2 work) before anything is written. */
async function newEncryption(p: Qcow2CreateParams, request: CreateRequest): Promise<NewEncryption | undefined> {
  if (p.encryption === undefined) return undefined;
  if (p.encryption === 'aes') {
    lookupSecretText(request.secrets, String(request.options.get('encrypt.key-secret')));
    return { kind: 'aes' };
  }
  const { format, password } = luksCreateOptions(request.options, request.secrets, 'encrypt.');
  const { header, key } = await newLuksHeader(format);
  return { kind: 'luks', header, key, password, iterTime: format.iterTime };
}

/**
 * Records the encryption in the header; for LUKS, allocates zeroed
 * clusters for the LUKS header and key material (after the L1 table, as
 * qemu places them), fills keyslot 0 and points the crypto header
 * extension at them.
 */
async function setUpEncryption(store: ByteStore, h: Qcow2Header, rc: Refcounts, crypt: NewEncryption): Promise<void> {
  if (crypt.kind === 'aes') {
    h.cryptMethod = 1;
    return;
  }
  const cs = 2 ** h.clusterBits;
  const length = crypt.header.payloadOffset * LUKS_SECTOR;
  const clusters = Math.ceil(length / cs);
  const offset = await rc.allocate(clusters);
  await store.write(offset, new Uint8Array(clusters * cs));
  const area = { size: length, read: async (at: number, into: Uint8Array) => void (await store.read(offset + at, into)), write: (at: number, data: Uint8Array) => store.write(offset + at, data) };
  await storeLuksKey(area, crypt.header, 0, crypt.key, crypt.password, crypt.iterTime);
  await writeLuksHeader(area, crypt.header);
  const ext = new Uint8Array(16);
  new DataView(ext.buffer).setBigUint64(0, BigInt(offset));
  new DataView(ext.buffer).setBigUint64(8, BigInt(length));
  h.cryptMethod = 2;
  h.crypto = { type: EXT_CRYPTO, data: ext };
}
