/**
 * `measure` for qcow2 targets (qcow2_measure, qcow2_calc_prealloc_size,
 * qcow2_refcount_metadata_size and qcow2_get_persistent_dirty_bitmap_size
 * in QEMU 7.2): the file size a new image needs, in pure arithmetic.
 */
import { alignUp } from '../../core/bytes.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { MeasureResult, MeasureSource, OptionValue, PersistentBitmapInfo } from '../driver.js';
import { cipherAlgValue, CIPHER_MODES, enumValue, masterKeyBytes } from '../crypto/luks-algs.js';
import { luksHeaderBytes } from '../crypto/luks-block.js';
import { refcountStructuresFor } from './refcount.js';

const L1E_SIZE = 8;
const BME_TABLE_ENTRY_SIZE = 8;
const V3_HINT = '(use compat=1.1 or greater)';

/** The options qcow2_measure reads, validated with its messages. */
export interface Qcow2MeasureParams {
  readonly clusterSize: number;
  readonly extendedL2: boolean;
  readonly version: 2 | 3;
  readonly refcountOrder: number;
  readonly preallocation: 'off' | 'metadata' | 'falloc' | 'full';
  readonly hasBackingFile: boolean;
  /** Clusters of the LUKS header and key material, in bytes (encrypt.format=luks). */
  readonly luksBytes: number;
}

/** The LUKS header size the encrypt.cipher-alg and encrypt.cipher-mode options make (qcrypto_block_calculate_payload_offset). */
function luksPayloadBytes(o: ReadonlyMap<string, OptionValue>): number {
  const alg = cipherAlgValue(String(o.get('encrypt.cipher-alg') ?? 'aes-256'), 'encrypt.cipher-alg');
  const mode = enumValue(CIPHER_MODES, 'encrypt.cipher-mode', String(o.get('encrypt.cipher-mode') ?? 'xts'));
  return luksHeaderBytes(masterKeyBytes(alg, mode));
}

/**
 * Parses the `-o` options as qcow2_measure does (cluster size, compat,
 * refcount width, preallocation, backing file presence).
 *
 * @throws {InvalidArgumentError} with qemu-img 7.2's messages
 */
function measureParams(o: ReadonlyMap<string, OptionValue>): Qcow2MeasureParams {
  const extendedL2 = o.get('extended_l2') === true;
  const clusterSize = Number(o.get('cluster_size') ?? 65536);
  const bits = Math.log2(clusterSize);
  if (!Number.isInteger(bits) || bits < 9 || bits > 21) throw new InvalidArgumentError('Cluster size must be a power of two between 512 and 2048k');
  if (extendedL2 && clusterSize < 16384) throw new InvalidArgumentError('Extended L2 entries are only supported with cluster sizes of at least 16384 bytes');
  const compat = o.get('compat');
  let version: 2 | 3 = 3;
  if (compat !== undefined) {
    if (compat === '0.10') version = 2;
    else if (compat !== '1.1') throw new InvalidArgumentError(`Invalid compatibility level: '${String(compat)}'`);
  }
  const refcountBits = Number(o.get('refcount_bits') ?? 16);
  const refcountOrder = Math.log2(refcountBits);
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw new InvalidArgumentError('Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (version < 3 && refcountBits !== 16) {
    throw new InvalidArgumentError(`Different refcount widths than 16 bits require compatibility level 1.1 or above ${V3_HINT}`);
  }
  const prealloc = o.get('preallocation') ?? 'off';
  if (prealloc !== 'off' && prealloc !== 'metadata' && prealloc !== 'falloc' && prealloc !== 'full') {
    throw new InvalidArgumentError(`invalid parameter value: ${String(prealloc)}`);
  }
  let luksBytes = 0;
  if (o.get('encrypt.format') === 'luks') {
    if (!o.has('encrypt.key-secret')) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
    luksBytes = alignUp(luksPayloadBytes(o), clusterSize);
  }
  return { clusterSize, extendedL2, version, refcountOrder, preallocation: prealloc, hasBackingFile: o.has('backing_file'), luksBytes };
}

/** Refcount table and block bytes needed to count `clusters` clusters (fixed point, as QEMU computes it). */
function refcountMetadataSize(clusters: number, clusterSize: number, refcountOrder: number): number {
  const { blocks, table } = refcountStructuresFor(clusters, { clusterSize, refcountBlockEntries: (clusterSize * 8) / 2 ** refcountOrder });
  return (blocks + table) * clusterSize;
}

/** File size of a fully allocated image of `totalSize` bytes (qcow2_calc_prealloc_size). */
function preallocSize(totalSize: number, clusterSize: number, refcountOrder: number, extendedL2: boolean): number {
  const l2eSize = extendedL2 ? 16 : 8;
  const aligned = alignUp(totalSize, clusterSize);
  let meta = clusterSize; // header
  const nl2e = alignUp(aligned / clusterSize, clusterSize / l2eSize);
  meta += nl2e * l2eSize;
  const nl1e = alignUp((nl2e * l2eSize) / clusterSize, clusterSize / L1E_SIZE);
  meta += nl1e * L1E_SIZE;
  meta += refcountMetadataSize((meta + aligned) / clusterSize, clusterSize, refcountOrder);
  return meta + aligned;
}

/** Bytes the persistent bitmaps take in a qcow2 image of `clusterSize` (data, tables, directory). */
function bitmapsSize(bitmaps: readonly PersistentBitmapInfo[], virtualSize: number, clusterSize: number): number {
  let size = 0;
  let dir = 0;
  for (const b of bitmaps) {
    const bytes = Math.ceil(Math.ceil(virtualSize / b.granularity) / 8);
    const clusters = Math.ceil(bytes / clusterSize);
    size += clusters * clusterSize;
    size += alignUp(clusters * BME_TABLE_ENTRY_SIZE, clusterSize);
    dir += alignUp(24 + Buffer.byteLength(b.name), 8);
  }
  return size + alignUp(dir, clusterSize);
}

/**
 * qcow2's measure hook.
 *
 * @throws {InvalidArgumentError} for bad options and sizes too large for the L1 table
 */
export async function measureQcow2(size: number, o: ReadonlyMap<string, OptionValue>, source?: MeasureSource): Promise<MeasureResult> {
  const p = measureParams(o);
  const cs = p.clusterSize;
  let virtualSize = alignUp(size, cs);
  const l2eSize = p.extendedL2 ? 16 : 8;
  const l2Tables = Math.ceil(virtualSize / cs / (cs / l2eSize));
  if (l2Tables * L1E_SIZE > LIMITS.qcow2MaxL1Bytes) throw new InvalidArgumentError('The image size is too large (try using a larger cluster size)');
  let required = 0;
  if (source) {
    virtualSize = alignUp(source.virtualSize, cs);
    // Without knowing what a backing file shares, every cluster may need writing.
    required = p.hasBackingFile ? virtualSize : await source.allocatedBytes(cs);
  }
  if (p.preallocation === 'full' || p.preallocation === 'falloc') required = virtualSize;
  const fullyAllocated = preallocSize(virtualSize, cs, p.refcountOrder, p.extendedL2) + p.luksBytes;
  const result: MeasureResult = { required: fullyAllocated - virtualSize + required, fullyAllocated };
  if (p.version >= 3 && source?.bitmaps !== undefined) return { ...result, bitmaps: bitmapsSize(source.bitmaps, source.virtualSize, cs) };
  return result;
}
