/**
 * An open luks image (QEMU's block/crypto.c over crypto/block-luks.c):
 * the LUKS1 header and key material at the start of the file, the
 * encrypted payload after them. The guest disk is the payload; its
 * sectors' IVs count from the payload's start. Opening for I/O unlocks a
 * keyslot with the `key-secret` passphrase; an open for `info` only reads
 * the header, as qemu's BDRV_O_NO_IO open does.
 */
import { CorruptImageError, InvalidArgumentError } from '../../core/errors.js';
import { typeQemuOpts } from '../../core/options.js';
import { lookupSecretText } from '../../core/secrets.js';
import { CryptStore } from '../crypto/crypt-store.js';
import { describeLuks, luksCipher, readLuksHeader, unlockLuks, type LuksArea } from '../crypto/luks-block.js';
import type { LuksHeader } from '../crypto/luks-header.js';
import { pbkdf2Cap } from '../crypto/luks-pbkdf.js';
import { LUKS_SECTOR } from '../crypto/luks-sector.js';
import type { ByteStore, Extent, FormatDescription, FormatImage, ImageAmender, ImageResizer, ImageWriter, OpenOptions, OptionSpec } from '../driver.js';
import { luksAmender } from './amend.js';

/** The luks driver's open options (qemu's block_crypto_runtime_opts_luks). */
export const LUKS_RUNTIME_OPTIONS: readonly OptionSpec[] = [
  { name: 'key-secret', type: 'string', help: 'ID of the secret that provides the keyslot passphrase' },
];

/** The whole store as the LUKS area: the header and material reach at most to the end of the file. */
export function storeArea(store: ByteStore, size: number): LuksArea {
  return {
    size,
    read: async (offset, into) => {
      const got = await store.read(offset, into);
      into.fill(0, got);
    },
    write: (offset, data) => store.write(offset, data),
  };
}

/** The passphrase of the `key-secret` open option, or qemu's message when there is none. */
export function openPassphrase(options: OpenOptions, key = 'key-secret'): Uint8Array {
  const opts = typeQemuOpts([{ name: key, type: 'string', help: '' }], options.runtime ?? []);
  const id = opts.get(key);
  if (typeof id !== 'string') throw new InvalidArgumentError(`Parameter '${key}' is required for cipher`);
  return new TextEncoder().encode(lookupSecretText(options.secrets, id));
}

/** Opens a luks image on `store`. */
export async function openLuks(store: ByteStore, options: OpenOptions): Promise<LuksImage> {
  const fileSize = await store.size();
  const area = storeArea(store, fileSize);
  const header = await readLuksHeader(area);
  const payload = header.payloadOffset * LUKS_SECTOR;
  // qemu's getlength: a file shorter than its payload offset cannot be sized.
  if (payload > fileSize) throw new CorruptImageError(`LUKS payload offset ${payload} is beyond the end of the file (${fileSize} bytes)`, { file: options.filename, offset: 104 });
  if (options.describeOnly) return new LuksImage(store, header, undefined, fileSize - payload, true, options);
  const password = openPassphrase(options);
  const { key } = await unlockLuks(area, header, { password, maxIterations: pbkdf2Cap(options.maxPbkdf2Iterations), file: options.filename });
  return new LuksImage(store, header, key, fileSize - payload, options.readOnly, options);
}

/** One open luks image. */
export class LuksImage implements FormatImage {
  readonly format = 'luks';
  readonly granularity = LUKS_SECTOR;
  readonly backing = undefined;
  /** qemu's crypto driver reports no block status: every range is data, with no host offset. */
  readonly opaqueStatus = true;
  readonly writer: ImageWriter | undefined;
  readonly resizer: ImageResizer | undefined;
  readonly amender: ImageAmender | undefined;
  #size: number;
  #plain: CryptStore | undefined;

  constructor(readonly store: ByteStore, readonly header: LuksHeader, key: Buffer | undefined, size: number, readOnly: boolean, options: OpenOptions) {
    this.#size = size;
    const payload = header.payloadOffset * LUKS_SECTOR;
    this.#plain = key && new CryptStore(store, luksCipher(header, key), payload, 0, Number.MAX_SAFE_INTEGER - payload);
    const plain = this.#plain;
    this.writer = readOnly || !plain ? undefined : {
      fixedLayout: true,
      noZeroInit: true,
      write: (offset, data) => plain.write(offset, data),
      writeZeroes: (offset, length) => writeZeroes(plain, offset, length),
    };
    this.resizer = readOnly || !plain ? undefined : { resize: (n, o) => this.#resize(n, o.preallocation) };
    this.amender = readOnly || !key ? undefined : luksAmender(storeArea(store, payload), header, key, options.secrets);
  }

  get virtualSize(): number {
    return this.#size;
  }

  /** Without the key (an `info`/`inspect` open) the extents name the ciphertext: layout only, never read. */
  mapping(offset: number, length: number): Promise<readonly Extent[]> {
    const payload = this.header.payloadOffset * LUKS_SECTOR;
    const where = this.#plain ? { store: this.#plain, hostOffset: offset } : { store: this.store, hostOffset: payload + offset };
    return Promise.resolve([{ kind: 'data', offset, length, ...where, opaque: true }]);
  }

  async #resize(size: number, preallocation: string | undefined): Promise<void> {
    const payload = this.header.payloadOffset * LUKS_SECTOR;
    if (preallocation !== undefined && preallocation !== 'off') {
      if (size > this.#size && this.store.preallocate) await this.store.preallocate(payload + this.#size, size - this.#size, preallocation === 'full' ? 'full' : 'falloc');
    }
    await this.store.truncate(payload + size);
    this.#size = size;
  }

  describe(): Promise<FormatDescription> {
    return Promise.resolve({ encrypted: true, dirty: false, formatSpecific: { type: 'luks', data: describeLuks(this.header) } });
  }

  flush(): Promise<void> {
    return this.store.flush();
  }

  async close(): Promise<void> {
    if (this.writer) await this.store.flush();
    await this.store.close();
  }
}

/** Zeros are written encrypted: there is no way to mark a range as reading zero (qemu writes them too). */
async function writeZeroes(plain: CryptStore, offset: number, length: number): Promise<void> {
  const chunk = 1024 * 1024;
  for (let at = offset; at < offset + length; at += chunk) await plain.write(at, new Uint8Array(Math.min(chunk, offset + length - at)));
}
