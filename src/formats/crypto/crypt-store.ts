/**
 * A plaintext view of encrypted bytes: reads decrypt and writes encrypt,
 * in whole 512-byte sectors (a partial sector is read, changed and
 * written back). View offset `v` is byte `base + v` of the underlying
 * store, and its sector's IV number is `(v + ivShift) / 512`: a luks
 * payload counts from 0, qcow2+luks counts host sectors, qcow2+aes guest
 * sectors. Drivers hand it out as the store of their data extents, so
 * the block layer reads plaintext without knowing about encryption.
 * Partial-sector writes read and write back: the caller serializes
 * writes that share a sector (the writers are not concurrent).
 */
import type { ByteStore } from '../../io/byte-store.js';

const SECTOR = 512;

/** Encrypts or decrypts whole sectors in place, given the first sector's IV number. */
export interface SectorTransform {
  encrypt(data: Uint8Array, firstSector: number): void;
  decrypt(data: Uint8Array, firstSector: number): void;
}

export class CryptStore implements ByteStore {
  readonly name: string;
  readonly readOnly: boolean;

  constructor(
    private readonly baseStore: ByteStore,
    private readonly cipher: SectorTransform,
    private readonly base: number,
    private readonly ivShift: number,
    private readonly length: number,
  ) {
    this.name = baseStore.name;
    this.readOnly = baseStore.readOnly;
  }

  size(): Promise<number> {
    return Promise.resolve(this.length);
  }

  private span(offset: number, n: number): { start: number; end: number } {
    return { start: Math.floor(offset / SECTOR) * SECTOR, end: Math.ceil((offset + n) / SECTOR) * SECTOR };
  }

  private async readSectors(start: number, into: Uint8Array): Promise<void> {
    const got = await this.baseStore.read(this.base + start, into);
    into.fill(0, got);
    this.cipher.decrypt(into, (start + this.ivShift) / SECTOR);
  }

  async read(offset: number, into: Uint8Array): Promise<number> {
    if (into.length === 0) return 0;
    const { start, end } = this.span(offset, into.length);
    if (start === offset && end === offset + into.length) {
      await this.readSectors(start, into);
    } else {
      const buf = new Uint8Array(end - start);
      await this.readSectors(start, buf);
      into.set(buf.subarray(offset - start, offset - start + into.length));
    }
    return into.length;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    const { start, end } = this.span(offset, data.length);
    const buf = new Uint8Array(end - start);
    if (start !== offset || end !== offset + data.length) await this.readSectors(start, buf);
    buf.set(data, offset - start);
    this.cipher.encrypt(buf, (start + this.ivShift) / SECTOR);
    await this.baseStore.write(this.base + start, buf);
  }

  truncate(): Promise<void> {
    return Promise.reject(new Error('CryptStore views cannot be truncated'));
  }

  flush(): Promise<void> {
    return this.baseStore.flush();
  }

  /** The view does not own the store it reads. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
