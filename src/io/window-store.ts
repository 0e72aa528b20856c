/**
 * A window onto another store: bytes [offset, offset + size) of `base`, at
 * 0 (qemu's raw `offset`/`size` options, an image stored inside a larger
 * file). Without a fixed size the window ends where the base does.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import type { ByteStore, HostExtent, LockRequest, StoreIdentity } from './byte-store.js';

export class WindowStore implements ByteStore {
  readonly name: string;
  readonly readOnly: boolean;

  /** `size` undefined: the window follows the end of `base`. */
  constructor(
    readonly base: ByteStore,
    readonly offset: number,
    readonly fixedSize: number | undefined,
  ) {
    this.name = base.name;
    this.readOnly = base.readOnly;
  }

  async size(): Promise<number> {
    return this.fixedSize ?? Math.max(0, (await this.base.size()) - this.offset);
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    const n = this.fixedSize === undefined ? into.length : Math.max(0, Math.min(into.length, this.fixedSize - offset));
    const got = n > 0 ? await this.base.read(this.offset + offset, into.subarray(0, n)) : 0;
    into.fill(0, got);
    return got;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.fixedSize !== undefined && offset + data.length > this.fixedSize) {
      throw new InvalidArgumentError(`Write beyond the end of '${this.name}' (fixed size ${this.fixedSize})`, { file: this.name, offset });
    }
    await this.base.write(this.offset + offset, data);
  }

  async truncate(size: number): Promise<void> {
    if (this.fixedSize !== undefined) throw new UnsupportedError('Cannot resize fixed-size raw disks', { file: this.name });
    await this.base.truncate(this.offset + size);
  }

  flush(): Promise<void> {
    return this.base.flush();
  }

  close(): Promise<void> {
    return this.base.close();
  }

  async allocatedSize(): Promise<number | undefined> {
    return this.base.allocatedSize?.();
  }

  identity(): StoreIdentity | undefined {
    return this.base.identity?.();
  }

  async extents(offset: number, length: number): Promise<readonly HostExtent[] | undefined> {
    const runs = await this.base.extents?.(this.offset + offset, length);
    return runs?.map((r) => ({ ...r, offset: r.offset - this.offset }));
  }

  async preallocate(offset: number, length: number, mode: 'falloc' | 'full'): Promise<void> {
    if (!this.base.preallocate) throw new UnsupportedError(`Preallocation mode '${mode}' is not supported on '${this.name}'`);
    await this.base.preallocate(this.offset + offset, length, mode);
  }

  async zeroRange(offset: number, length: number, unmap: boolean): Promise<boolean> {
    return (await this.base.zeroRange?.(this.offset + offset, length, unmap)) ?? false;
  }

  async copyFrom(source: ByteStore, sourceOffset: number, offset: number, length: number): Promise<boolean> {
    return (await this.base.copyFrom?.(source, sourceOffset, this.offset + offset, length)) ?? false;
  }

  async lock(request: LockRequest): Promise<void> {
    await this.base.lock?.(request);
  }
}
