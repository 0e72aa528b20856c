/**
 * `amend` for qcow2 (qcow2_amend_options): compat up- and downgrade,
 * lazy_refcounts, refcount_bits, data_file/data_file_raw, size, and the
 * backing options (only their current values: 7.2 refuses changes). Steps
 * run in qemu's order with qemu's messages; each header change is one
 * header write.
 */
import { throwIfAborted } from '../../core/abort.js';
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import type { OptionSpec } from '../../core/options.js';
import type { AmendRequest, ImageAmender, ImageResizer, OptionValue } from '../driver.js';
import { changeRefcountOrder } from './amend-refcount.js';
import { expandZeroClusters, hasCompressedClusters } from './amend-zero.js';
import { rewriteHeader } from './backing.js';
import { writeSnapshotTable } from './snapshot-table.js';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  V2_HEADER_LENGTH,
  V3_HEADER_LENGTH,
} from './layout.js';
import { amendEncryption } from './crypt.js';
import type { Qcow2State } from './state.js';

/** The options `amend -o` accepts for qcow2, in qemu 7.2's list order (LUKS keyslot options first). */
export const QCOW2_AMEND_OPTIONS: readonly OptionSpec[] = [
  { name: 'encrypt.state', type: 'string', help: 'Select new state of affected keyslots (active/inactive)' },
  { name: 'encrypt.keyslot', type: 'number', help: 'Select a single keyslot to modify explicitly' },
  { name: 'encrypt.old-secret', type: 'string', help: 'Select all keyslots that match this password' },
  { name: 'encrypt.new-secret', type: 'string', help: 'New secret to set in the matching keyslots. Empty string to erase' },
  { name: 'encrypt.iter-time', type: 'number', help: 'Time to spend in PBKDF in milliseconds' },
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'compat', type: 'string', help: 'Compatibility level (v2 [0.10] or v3 [1.1])' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'backing_fmt', type: 'string', help: 'Image format of the base image' },
  { name: 'data_file', type: 'string', help: 'File name of an external data file' },
  { name: 'data_file_raw', type: 'bool', help: 'The external data file must stay valid as a raw image' },
  { name: 'lazy_refcounts', type: 'bool', help: 'Postpone refcount updates' },
  { name: 'refcount_bits', type: 'number', help: 'Width of a reference count entry in bits' },
];

/** What the amender needs from the open image and its writer. */
export interface AmendTarget {
  readonly state: Qcow2State;
  /** Writes back every cache (the writer's flush). */
  flush(): Promise<void>;
  /** Stops the writer after structures it caches were rebuilt. */
  retire(reason: Error): void;
  /** Tells the writer metadata moved (its map of metadata clusters is stale). */
  metadataMoved(): void;
  /** The image's resizer, for `size`. */
  resizer(): ImageResizer | undefined;
}

const bit = (word: bigint, b: number): boolean => (word & BigInt(b)) !== 0n;

interface Plan {
  version: 2 | 3;
  size: number;
  backingFile: string | undefined;
  backingFormat: string | undefined;
  backingGiven: boolean;
  dataFile: string | undefined;
  dataFileRaw: boolean;
  lazy: boolean;
  refcountBits: number;
  encryption: boolean;
}

/** qemu's option loop: reads and validates the given options in list order. */
function plan(s: Qcow2State, values: ReadonlyMap<string, OptionValue>): Plan {
  const h = s.header;
  const p: Plan = {
    version: h.version,
    size: 0,
    backingFile: undefined,
    backingFormat: undefined,
    backingGiven: false,
    dataFile: undefined,
    dataFileRaw: s.dataFileRaw,
    lazy: bit(h.compatible, COMPAT_LAZY_REFCOUNTS),
    refcountBits: s.g.refcountBits,
    encryption: false,
  };
  for (const spec of QCOW2_AMEND_OPTIONS) {
    const v = values.get(spec.name);
    if (v === undefined) continue;
    switch (spec.name) {
      case 'compat':
        if (v === '0.10' || v === 'v2') p.version = 2;
        else if (v === '1.1' || v === 'v3') p.version = 3;
        else throw new InvalidArgumentError(`Unknown compatibility level ${String(v)}`);
        break;
      case 'size':
        p.size = v as number;
        break;
      case 'backing_file':
        p.backingFile = v as string;
        p.backingGiven = true;
        break;
      case 'backing_fmt':
        p.backingFormat = v as string;
        p.backingGiven = true;
        break;
      case 'lazy_refcounts':
        p.lazy = v as boolean;
        break;
      case 'refcount_bits': {
        const n = v as number;
        if (!Number.isInteger(n) || n <= 0 || n > 64 || (n & (n - 1)) !== 0) throw new InvalidArgumentError('Refcount width must be a power of two and may not exceed 64 bits');
        p.refcountBits = n;
        break;
      }
      case 'data_file':
        if (!bit(h.incompatible, INCOMPAT_DATA_FILE)) throw new InvalidArgumentError('data-file can only be set for images that use an external data file');
        p.dataFile = v as string;
        break;
      case 'data_file_raw':
        p.dataFileRaw = v as boolean;
        if (p.dataFileRaw && !s.dataFileRaw) throw new InvalidArgumentError('data-file-raw cannot be set on existing images');
        break;
      default:
        if (h.cryptMethod === 0) throw new InvalidArgumentError("Can't amend encryption options - encryption not present");
        if (h.cryptMethod !== 2) throw new UnsupportedError('Only LUKS encryption options can be amended');
        p.encryption = true;
    }
  }
  return p;
}

/**
 * v2 → v3 (qcow2_upgrade): v3 requires every snapshot entry to record its
 * disk size and 64-bit VM state size, so a table without that extra data
 * is rewritten with it first (the disk size taken as the current one),
 * then the header gains the v3 fields.
 */
async function upgrade(target: AmendTarget, status: (offset: number, work: number) => void): Promise<void> {
  const s = target.state;
  status(0, 2);
  if (s.snapshots.some((sn) => sn.diskSize === undefined)) {
    if (!s.refcounts) throw new InvalidArgumentError(`Image '${s.filename}' is not open for writing`);
    await writeSnapshotTable(s, s.refcounts, s.snapshots);
    target.metadataMoved();
  }
  status(1, 2);
  const h = s.header;
  Object.assign(h, { version: 3, headerLength: V3_HEADER_LENGTH, incompatible: 0n, compatible: 0n, autoclear: 0n, refcountOrder: 4, compressionType: COMPRESSION_ZLIB });
  await rewriteHeader(s);
  (s as { version: 2 | 3 }).version = 3;
  status(2, 2);
}

/** qemu's amend operations that report steps, in the order they run (qcow2_amend_options). */
const enum Op {
  Upgrade = 1,
  RefcountOrder,
  Downgrade,
}

/**
 * qcow2_amend_helper_cb: each operation's own (offset, work) made one
 * whole, the operations not yet started projected at the size of those
 * seen, so `amend -p` draws the same steps as qemu-img's.
 */
class AmendProgress {
  #last: Op | undefined;
  #offsetCompleted = 0;
  #lastWork = 0;
  #completed = 0;

  constructor(
    private readonly operations: number,
    private readonly report: ((done: number, total: number) => void) | undefined,
  ) {}

  /** The status callback of operation `op`. */
  of(op: Op): (offset: number, work: number) => void {
    return (offset, work) => {
      if (!this.report || this.operations === 0) return;
      if (op !== this.#last) {
        if (this.#last !== undefined) {
          this.#offsetCompleted += this.#lastWork;
          this.#completed++;
        }
        this.#last = op;
      }
      this.#lastWork = work;
      const current = this.#offsetCompleted + work;
      const projected = Math.trunc((current * (this.operations - this.#completed - 1)) / (this.#completed + 1));
      this.report(this.#offsetCompleted + offset, current + projected);
    };
  }
}

/** The downgrade's refusals, in qemu's order (refcount width as it will be once amend is done). */
function checkDowngrade(s: Qcow2State, refcountBits: number): void {
  const h = s.header;
  if (refcountBits !== 16) throw new UnsupportedError('compat=0.10 requires refcount_bits=16');
  if (bit(h.incompatible, INCOMPAT_DATA_FILE)) throw new UnsupportedError('Cannot downgrade an image with a data file');
  for (const sn of s.snapshots) {
    if (sn.vmStateSize > 0xffffffff || sn.diskSize !== s.virtualSize) throw new UnsupportedError('Internal snapshots prevent downgrade of image');
  }
  const other = h.incompatible & ~BigInt(INCOMPAT_COMPRESSION | INCOMPAT_DIRTY);
  if (other !== 0n) throw new UnsupportedError(`Cannot downgrade an image with incompatible features 0x${other.toString(16)} set`);
}

/** Builds the qcow2 amender for an open, writable image. */
export function qcow2Amender(target: AmendTarget): ImageAmender {
  return {
    options: QCOW2_AMEND_OPTIONS,
    async amend(req: AmendRequest): Promise<void> {
      const s = target.state;
      const h = s.header;
      const p = plan(s, req.values);
      const oldVersion = h.version;
      const refcountChange = p.refcountBits !== s.g.refcountBits;
      // An encryption update counts as an operation in qemu's projection, though it reports no steps.
      const progress = new AmendProgress(Number(p.version !== oldVersion) + Number(refcountChange) + Number(p.encryption), req.onProgress);
      await target.flush();
      if (p.version > oldVersion) await upgrade(target, progress.of(Op.Upgrade));
      if (p.encryption && s.crypt) await amendEncryption(s.store, s.crypt, req.values, req.force);
      if (refcountChange && p.version < 3 && p.refcountBits !== 16) {
        throw new InvalidArgumentError('Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)');
      }
      // data-file-raw and the data file name.
      const autoclear = p.dataFileRaw ? h.autoclear | BigInt(AUTOCLEAR_DATA_FILE_RAW) : h.autoclear & ~BigInt(AUTOCLEAR_DATA_FILE_RAW);
      const dataFile = p.dataFile === undefined ? h.dataFile : p.dataFile === '' ? undefined : p.dataFile;
      if (autoclear !== h.autoclear || dataFile !== h.dataFile) {
        h.autoclear = autoclear;
        h.dataFile = dataFile;
        await rewriteHeader(s);
      }
      if (p.backingGiven && (p.backingFile !== h.backingFile || p.backingFormat !== h.backingFormat)) {
        throw new InvalidArgumentError('Cannot amend the backing file', { hint: "You can use 'qemu-img rebase' instead." });
      }
      if (p.lazy !== bit(h.compatible, COMPAT_LAZY_REFCOUNTS)) {
        if (p.lazy && p.version < 3) throw new InvalidArgumentError('Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)');
        await target.flush();
        h.compatible = p.lazy ? h.compatible | BigInt(COMPAT_LAZY_REFCOUNTS) : h.compatible & ~BigInt(COMPAT_LAZY_REFCOUNTS);
        await rewriteHeader(s);
        if (s.refcounts) s.refcounts.lazy = p.lazy;
      }
      if (p.size) {
        const resizer = target.resizer();
        if (!resizer) throw new UnsupportedError('Image format driver does not support resize');
        await resizer.resize(p.size, { shrink: true });
        await target.flush();
      }
      throwIfAborted(req.signal);
      // qemu changes the refcount width before it downgrades (its progress counts the steps in that
      // order); the size goes first here, as the resizer works through the writer this retires.
      if (refcountChange) {
        await target.flush();
        target.retire(new UnsupportedError('The refcount structures were rebuilt by amend; reopen the image to write it'));
        await changeRefcountOrder(s, Math.log2(p.refcountBits), req.signal, progress.of(Op.RefcountOrder));
      }
      const downgrade = p.version < oldVersion;
      if (downgrade) {
        checkDowngrade(s, p.refcountBits);
        const rc = s.refcounts;
        if (!rc) throw new InvalidArgumentError(`Image '${s.filename}' is not open for writing`);
        await expandZeroClusters(s, rc, h.backingFile !== undefined, req.signal, progress.of(Op.Downgrade));
        if (h.compressionType === COMPRESSION_ZSTD) {
          if (await hasCompressedClusters(s)) throw new UnsupportedError('Cannot downgrade an image with zstd compression type and existing compressed clusters');
        }
        // QEMU keeps the bitmaps extension: with no autoclear bits in v2, readers then ignore it as stale.
        Object.assign(h, { version: 2, headerLength: V2_HEADER_LENGTH, incompatible: 0n, compatible: 0n, autoclear: 0n, compressionType: COMPRESSION_ZLIB });
        await rewriteHeader(s);
        (s as { version: 2 | 3 }).version = 2;
        target.retire(new UnsupportedError('The image was downgraded by amend; reopen the image to write it'));
      }
    },
  };
}
