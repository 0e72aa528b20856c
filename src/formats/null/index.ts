/**
 * qemu's null-co / null-aio block drivers (block/null.c): a device of a
 * given size that discards writes. qemu leaves reads unfilled unless
 * `read-zeroes=on`; vdisk always reads zeros, and reports the range as
 * zeros only with `read-zeroes=on`, as qemu's block status does (without
 * it: neither data nor zeros, so `map` says `"zero": false`).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { typeQemuOpts, type OptionSpec } from '../../core/options.js';
import type { HostExtent } from '../../io/byte-store.js';
import type { ByteStore, Extent, FormatDescription, FormatImage, ImageWriter } from '../driver.js';

/** The options null-co and null-aio take (qemu's null runtime_opts). */
export const NULL_RUNTIME_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'size of the null block' },
  { name: 'latency-ns', type: 'number', help: 'nanoseconds (approximated) to wait before completing request' },
  { name: 'read-zeroes', type: 'bool', help: 'return zeroes when read' },
];

const DEFAULT_SIZE = 1024 * 1024 * 1024;

/** A store of `size` zeros that ignores writes. */
class NullStore implements ByteStore {
  readonly readOnly: boolean;
  constructor(
    readonly name: string,
    readonly length: number,
    readOnly: boolean,
    readonly readZeroes: boolean,
  ) {
    this.readOnly = readOnly;
  }
  /** One run as qemu's null block status gives it: zeros with `read-zeroes`, else unknown (a format over it says so too). */
  async extents(offset: number, length: number): Promise<HostExtent[]> {
    const n = Math.min(length, this.length - offset);
    return n > 0 ? [{ offset, length: n, data: false, ...(this.readZeroes ? {} : { unknown: true }) }] : [];
  }
  async size(): Promise<number> {
    return this.length;
  }
  async read(_offset: number, into: Uint8Array): Promise<number> {
    into.fill(0);
    return into.length;
  }
  async write(): Promise<void> {}
  async truncate(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  async allocatedSize(): Promise<number> {
    return 0;
  }
}

class NullWriter implements ImageWriter {
  readonly concurrentWrites = true;
  readonly fixedLayout = true;
  async write(): Promise<void> {}
  async writeZeroes(): Promise<void> {}
  async discard(): Promise<void> {}
}

class NullImage implements FormatImage {
  readonly granularity = 512;
  readonly backing = undefined;
  readonly writer: ImageWriter | undefined;
  constructor(
    readonly format: string,
    readonly store: NullStore,
    readonly virtualSize: number,
    readonly readZeroes: boolean,
  ) {
    this.writer = store.readOnly ? undefined : new NullWriter();
  }
  async mapping(offset: number, length: number): Promise<readonly Extent[]> {
    if (!this.readZeroes) return [{ kind: 'unallocated', offset, length, unknownContent: true }];
    return [{ kind: 'zero', offset, length, allocated: true, store: this.store, hostOffset: offset }];
  }
  async describe(): Promise<FormatDescription> {
    return {};
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/**
 * Opens a null device from its options, `[key, text]` in qemu's order.
 *
 * @throws {InvalidArgumentError} for a bad value (qemu aborts there; vdisk refuses)
 */
export function openNull(driver: 'null-co' | 'null-aio', pairs: readonly (readonly [string, string])[], readOnly: boolean): FormatImage {
  const opts = typeQemuOpts(NULL_RUNTIME_OPTIONS, pairs);
  const size = (opts.get('size') as bigint | undefined) ?? BigInt(DEFAULT_SIZE);
  // qemu counts whole sectors: a size of 1000 is 1024 bytes.
  const sectors = (size + 511n) / 512n;
  if (sectors * 512n > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(`Parameter 'size' is larger than vdisk supports (2^53 - 1)`);
  const bytes = Number(sectors * 512n);
  const readZeroes = opts.get('read-zeroes') === true;
  return new NullImage(driver, new NullStore(`${driver}://`, bytes, readOnly, readZeroes), bytes, readZeroes);
}
