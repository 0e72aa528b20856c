/**
 * raw: the image is the guest disk, byte for byte. No header, no backing
 * file. Block status comes from zero detection until the file store can
 * ask the kernel for holes.
 */
import { alignUp, scanRun } from '../../core/bytes.js';
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import type { HostExtent } from '../../io/byte-store.js';
import type {
  ByteStore,
  CreateRequest,
  Extent,
  FormatDescription,
  FormatDriver,
  FormatImage,
  ImageResizer,
  ImageWriter,
  OpenOptions,
  OptionSpec,
  SparseRuns,
  SparseScan,
} from '../driver.js';
import { checkProtocolCreateOptions } from '../protocol-options.js';
import { rawStreamWriter } from './stream.js';
import { readRawForward } from './forward.js';
import { measureRaw } from './measure.js';
import { typeQemuOpts } from '../../core/options.js';
import { WindowStore } from '../../io/window-store.js';
import { fileGrowthError } from '../../io/truncate.js';
import { rangeHolding } from '../../core/sorted-ranges.js';

/** Zero runs shorter than this are reported as data, like a file system's block. */
const ZERO_GRANULE = 4096;
/** Bytes examined per mapping call, so one call stays cheap. */
const SCAN_WINDOW = 4 * 1024 * 1024;

const CREATE_OPTIONS: readonly OptionSpec[] = [{ name: 'size', type: 'size', help: 'Virtual disk size' }];
const RAW_OWN_OPTIONS: ReadonlySet<string> = new Set(CREATE_OPTIONS.map((o) => o.name));

/** Open options (`--image-opts`, `json:`): the image as a window into its file. */
const RUNTIME_OPTIONS: readonly OptionSpec[] = [
  { name: 'offset', type: 'size', help: 'offset in the disk where the image starts' },
  { name: 'size', type: 'size', help: 'virtual disk size' },
];

/** qemu's raw_read_options: the file itself, or the window `offset`/`size` name, checked against the file. */
async function rawWindow(store: ByteStore, options: OpenOptions): Promise<ByteStore> {
  const opts = typeQemuOpts(RUNTIME_OPTIONS, options.runtime ?? []);
  if (opts.size === 0) return store;
  // qemu measures the file in whole sectors (bdrv_getlength): a partial last sector counts, reading as zeros.
  const real = BigInt(alignUp(await store.size(), 512));
  const offset = (opts.get('offset') as bigint | undefined) ?? 0n;
  const fixed = opts.get('size') as bigint | undefined;
  if (offset > real) throw new InvalidArgumentError(`Offset (${offset}) cannot be greater than size of the containing file (${real})`);
  const size = fixed ?? real - offset;
  if (real - offset < size) {
    throw new InvalidArgumentError(`The sum of offset (${offset}) and size (${size}) has to be smaller or equal to the  actual size of the containing file (${real})`);
  }
  if (fixed !== undefined && fixed % 512n !== 0n) throw new InvalidArgumentError('Specified size is not multiple of 512');
  return new WindowStore(store, Number(offset), fixed === undefined ? undefined : Number(fixed));
}

class RawImage implements FormatImage {
  readonly format: 'raw' | 'file';
  readonly granularity = 512;
  readonly backing = undefined;
  readonly store: ByteStore;
  readonly writer: ImageWriter | undefined;
  readonly resizer: ImageResizer | undefined;
  #size: number;

  constructor(store: ByteStore, size: number, readOnly: boolean, format: 'raw' | 'file' = 'raw') {
    this.store = store;
    this.#size = size;
    this.format = format;
    this.writer = readOnly ? undefined : new RawWriter(store);
    this.resizer = readOnly ? undefined : { resize: (n, o) => this.#resize(n, o.preallocation) };
  }

  get virtualSize(): number {
    return this.#size;
  }

  /** Host extents from the last SEEK_DATA walk (read-only opens: the file cannot change under us). */
  #hostCache: readonly HostExtent[] = [];

  async #hostExtents(offset: number, length: number, maxExtents: number): Promise<readonly HostExtent[] | undefined> {
    if (this.writer) return this.store.extents?.(offset, length);
    // Block status asks run by run; one lseek walk serves many calls instead of two lseeks each.
    const i = rangeHolding(this.#hostCache, offset);
    if (i < 0) {
      const fresh = await this.store.extents?.(offset, length);
      if (!fresh) return undefined;
      this.#hostCache = fresh;
      return fresh.length > maxExtents ? fresh.slice(0, maxExtents) : fresh;
    }
    const end = offset + length;
    const out: HostExtent[] = [];
    for (let k = i; k < this.#hostCache.length; k++) {
      const h = this.#hostCache[k] as HostExtent;
      if (h.offset >= end || out.length >= maxExtents) break;
      const start = Math.max(h.offset, offset);
      out.push({ ...h, offset: start, length: Math.min(h.offset + h.length, end) - start });
    }
    return out;
  }

  async mapping(offset: number, length: number, maxExtents = Infinity): Promise<readonly Extent[]> {
    const extents = await this.#mapStore(offset, length, maxExtents);
    // Inside a window (`offset` option) the bytes live further into the file: report where.
    const w = this.store;
    if (!(w instanceof WindowStore)) return extents;
    return extents.map((e) => ('hostOffset' in e && e.hostOffset !== undefined ? { ...e, store: w.base, hostOffset: e.hostOffset + w.offset } : e));
  }

  async #mapStore(offset: number, length: number, maxExtents: number): Promise<readonly Extent[]> {
    // Holes, as the kernel knows them (SEEK_DATA/SEEK_HOLE), when the store can say.
    const host = await this.#hostExtents(offset, length, maxExtents);
    if (host && host.length > 0) {
      return host.map((h): Extent => {
        // Data known to read as zeros (NBD's ZERO status): block status asks the store again and says so.
        if (h.data) return { kind: 'data', offset: h.offset, length: h.length, store: this.store, hostOffset: h.offset, ...(h.zero ? { recurse: true } : {}) };
        if (h.unknown) return { kind: 'unallocated', offset: h.offset, length: h.length, unknownContent: true };
        return { kind: 'zero', offset: h.offset, length: h.length, allocated: true, store: this.store, hostOffset: h.offset };
      });
    }
    const n = Math.min(length, SCAN_WINDOW);
    const buf = new Uint8Array(n);
    await this.store.read(offset, buf);
    const out: Extent[] = [];
    // Granules are aligned to the file, not to the request.
    let pos = 0;
    const headLen = Math.min(n, ZERO_GRANULE - (offset % ZERO_GRANULE));
    if (headLen < ZERO_GRANULE && headLen < n) {
      pushRun(out, this.store, offset, headLen, scanRun(buf.subarray(0, headLen), headLen).zero);
      pos = headLen;
    }
    while (pos < n) {
      const run = scanRun(buf.subarray(pos), ZERO_GRANULE);
      pushRun(out, this.store, offset + pos, run.length, run.zero);
      pos += run.length;
    }
    return out;
  }

  async describe(): Promise<FormatDescription> {
    // qemu's network and null protocol drivers (nbd, curl, null-co) have no get_info, so raw over them shows no dirty flag.
    return { dirty: /^[a-z][a-z0-9+.-]*:\/\//i.test(this.store.name) ? undefined : false };
  }

  async flush(): Promise<void> {
    await this.store.flush();
  }

  async close(): Promise<void> {
    if (!this.store.readOnly) await this.store.flush();
    await this.store.close();
  }

  /** Resize: qemu's file driver takes off/falloc/full for the grown part. */
  async #resize(newSize: number, prealloc = 'off'): Promise<void> {
    if (prealloc !== 'off' && prealloc !== 'falloc' && prealloc !== 'full') throw new UnsupportedError(`Unsupported preallocation mode: ${prealloc}`);
    const old = await this.store.size();
    await this.store.truncate(newSize, true).catch((err: unknown) => Promise.reject(newSize > old ? fileGrowthError(err, prealloc, 'resize') : err));
    if (prealloc !== 'off' && newSize > old) {
      if (!this.store.preallocate) throw new UnsupportedError(`Preallocation mode '${prealloc}' is not supported on '${this.store.name}'`);
      await this.store.preallocate(old, newSize - old, prealloc).catch((err: unknown) => Promise.reject(fileGrowthError(err, prealloc, 'fill')));
    }
    this.#size = newSize;
  }
}

function pushRun(out: Extent[], store: ByteStore, offset: number, length: number, zero: boolean): void {
  const last = out[out.length - 1];
  if (last && last.offset + last.length === offset && (last.kind === 'zero') === zero) {
    out[out.length - 1] = { ...last, length: last.length + length };
    return;
  }
  out.push(zero ? { kind: 'zero', offset, length, allocated: true, store, hostOffset: offset } : { kind: 'data', offset, length, store, hostOffset: offset });
}

class RawWriter implements ImageWriter {
  readonly concurrentWrites = true;
  readonly fixedLayout = true;
  readonly #store: ByteStore;
  constructor(store: ByteStore) {
    this.#store = store;
  }
  async copyFrom(offset: number, length: number, source: ByteStore, sourceOffset: number): Promise<boolean> {
    return (await this.#store.copyFrom?.(source, sourceOffset, offset, length)) ?? false;
  }
  async copyRuns(offset: number, source: ByteStore, sourceOffset: number, buffer: Uint8Array, length: number, scan: SparseScan): Promise<SparseRuns | undefined> {
    return this.#store.copyRuns?.(source, sourceOffset, offset, buffer, length, scan);
  }
  async writeRuns(offset: number, buffer: Uint8Array, scan: SparseScan): Promise<SparseRuns | undefined> {
    return this.#store.writeRuns?.(offset, buffer, scan);
  }
  /** Discarded ranges read as zeros afterwards, as on qemu's file driver. */
  async discard(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, await this.#store.size());
    if (end > offset) await this.#store.zeroRange?.(offset, end - offset, true);
  }
  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.#store.write(offset, data);
  }
  async writeZeroes(offset: number, length: number, options: { mayUnmap: boolean }): Promise<void> {
    const end = Math.min(offset + length, await this.#store.size());
    // Beyond the end of the file the bytes already read as zeros.
    if (end > offset && (await this.#store.zeroRange?.(offset, end - offset, options.mayUnmap))) return;
    const chunk = new Uint8Array(Math.min(length, 1024 * 1024));
    for (let off = offset; off < offset + length; off += chunk.length) {
      const n = Math.min(chunk.length, offset + length - off);
      await this.#store.write(off, n === chunk.length ? chunk : chunk.subarray(0, n));
    }
  }
}

/** The file protocol's create; nocow and extent_size_hint only tune btrfs/xfs. */
async function createRaw(store: ByteStore, request: CreateRequest): Promise<void> {
  // qemu's host_device create refuses preallocation before it looks at the size.
  checkProtocolCreateOptions(request.options, RAW_OWN_OPTIONS, store.device === true ? 'simple' : 'file');
  const prealloc = String(request.options.get('preallocation') ?? 'off');
  // qemu-img creates raw files in whole sectors.
  const size = alignUp(request.size, 512);
  // Without preallocation create keeps the store's words (convert turns them into file-posix's, create into its own).
  await store.truncate(size).catch((err: unknown) => Promise.reject(prealloc === 'off' ? err : fileGrowthError(err, prealloc, 'resize')));
  if (prealloc !== 'off') {
    if (!store.preallocate) throw new UnsupportedError(`Preallocation mode '${prealloc}' is not supported on '${store.name}'`);
    await store.preallocate(0, size, prealloc as 'falloc' | 'full').catch((err: unknown) => Promise.reject(fileGrowthError(err, prealloc, 'fill')));
  }
  if (prealloc !== 'full') {
    // qemu allocates the first block (after falloc too) so later alignment probing is cheap; match its disk usage.
    const first = Math.min(size, 4096);
    if (first > 0) await store.write(0, new Uint8Array(first));
  }
}

/** The raw format driver. */
export const rawDriver: FormatDriver = {
  name: 'raw',
  createOptions: CREATE_OPTIONS,
  // Raw matches anything, weakly: any driver that claims the file wins.
  probe: () => 1,
  runtimeOptions: RUNTIME_OPTIONS,
  async open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
    const window = await rawWindow(store, options);
    // qemu sees a raw file in whole sectors: a partial last sector reads as zeros. A window that
    // follows the file's end starts from the file's whole sectors too.
    const size = window instanceof WindowStore && window.fixedSize === undefined ? alignUp(await store.size(), 512) - window.offset : await window.size();
    return new RawImage(window, alignUp(Math.max(0, size), 512), options.readOnly);
  },
  create: createRaw,
  measure: measureRaw,
  streamWriter: (request) => rawStreamWriter(request, RAW_OWN_OPTIONS),
  readForward: (source) => readRawForward(source),
};

/**
 * `file` named as the format (`-f file`, `-O file`, `-F file`): qemu then
 * uses its file protocol node as the image, which reads and writes like
 * raw without raw's `offset`/`size` window, is never probed, has no size
 * measurement, and shows as `file format: file`.
 */
export const fileFormatDriver: FormatDriver = {
  name: 'file',
  createOptions: CREATE_OPTIONS,
  probe: () => 0,
  async open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
    return new RawImage(store, alignUp(await store.size(), 512), options.readOnly, 'file');
  },
  create: createRaw,
  streamWriter: (request) => rawStreamWriter(request, RAW_OWN_OPTIONS),
  readForward: (source) => readRawForward(source),
};

/** Whether `format` passes the file through as the disk (raw, or the file protocol named as the format). */
export function isPassThroughFormat(format: string | undefined): boolean {
  return format === 'raw' || format === 'file';
}
