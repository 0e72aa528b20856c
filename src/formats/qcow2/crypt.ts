/**
 * qcow2 encryption (crypt_method 1 = the legacy qcow AES cipher, 2 = LUKS
 * with its header in the clusters the full-disk-encryption header
 * extension points at): opening the cipher with `encrypt.key-secret`,
 * the plaintext views data clusters are read and written through, and
 * `info`'s `encrypt` block. LUKS IVs count host sectors (qemu's
 * crypt_physical_offset), AES IVs guest sectors.
 */
import { CorruptImageError, InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import type { Secrets } from '../../core/secrets.js';
import type { ByteStore } from '../../io/byte-store.js';
import { CryptStore, type SectorTransform } from '../crypto/crypt-store.js';
import { describeLuks, luksCipher, readLuksHeader, unlockLuks, type LuksArea } from '../crypto/luks-block.js';
import type { LuksHeader } from '../crypto/luks-header.js';
import { pbkdf2Cap } from '../crypto/luks-pbkdf.js';
import { QcowAesCipher, qcowAesKey } from '../crypto/qcow-aes.js';
import type { Extent, OpenOptions, OptionValue } from '../driver.js';
import { amendLuksKeyslots } from '../crypto/luks-keyslots.js';
import { openPassphrase } from '../luks/image.js';
import type { Qcow2Header } from './header.js';

/** Largest LUKS area vdisk accepts in a qcow2 image (qemu's is about 2 MiB: 8 slots of a 64-byte key). */
const MAX_CRYPTO_AREA = 16 * 1024 * 1024;

/** What an open encrypted qcow2 image knows about its encryption. */
export interface Qcow2Crypt {
  readonly kind: 'aes' | 'luks';
  readonly luks?: { header: LuksHeader; area: { offset: number; length: number } } | undefined;
  /** Absent for opens that do no I/O (`info`). */
  readonly transform?: SectorTransform | undefined;
  /** The LUKS master key and the open's secrets, for keyslot amend. */
  readonly unlocked?: { readonly key: Uint8Array; readonly secrets: Secrets | undefined } | undefined;
}

/** The full-disk-encryption header extension: offset and length, bounded. */
function cryptoArea(h: Qcow2Header, clusterSize: number, fileSize: number): { offset: number; length: number } {
  const data = h.crypto?.data;
  if (!data) throw new CorruptImageError('Could not read encryption header');
  if (data.length !== 16) throw new CorruptImageError(`Invalid encryption header extension length ${data.length}`);
  const v = new DataView(data.buffer, data.byteOffset, 16);
  const offset = Number(v.getBigUint64(0));
  const length = Number(v.getBigUint64(8));
  if (offset % clusterSize !== 0) throw new CorruptImageError(`Encryption header offset '${offset}' is not a multiple of cluster size '${clusterSize}'`);
  if (length > MAX_CRYPTO_AREA || offset === 0 || offset + length > fileSize) {
    throw new CorruptImageError(`Encryption header (offset ${offset}, length ${length}) lies outside the image file (${fileSize} bytes)`);
  }
  return { offset, length };
}

function areaOf(store: ByteStore, a: { offset: number; length: number }): LuksArea {
  return {
    size: a.length,
    read: async (offset, into) => {
      const got = await store.read(a.offset + offset, into);
      into.fill(0, got);
    },
    write: (offset, data) => store.write(a.offset + offset, data),
  };
}

/** Opens the image's encryption (undefined for a plain image). */
export async function openQcow2Crypt(store: ByteStore, h: Qcow2Header, clusterSize: number, options: OpenOptions): Promise<Qcow2Crypt | undefined> {
  if (h.cryptMethod === 0) {
    if (h.crypto) throw new CorruptImageError('Crypto header extension found but the image is not encrypted');
    return undefined;
  }
  if (h.cryptMethod === 1) {
    if (options.describeOnly) return { kind: 'aes' };
    const passphrase = new TextDecoder().decode(openPassphrase(options, 'encrypt.key-secret'));
    return { kind: 'aes', transform: new QcowAesCipher(qcowAesKey(passphrase)) };
  }
  const area = cryptoArea(h, clusterSize, await store.size());
  const la = areaOf(store, area);
  const header = await readLuksHeader(la);
  if (options.describeOnly) return { kind: 'luks', luks: { header, area } };
  const password = openPassphrase(options, 'encrypt.key-secret');
  const { key } = await unlockLuks(la, header, { password, maxIterations: pbkdf2Cap(options.maxPbkdf2Iterations), file: options.filename });
  return { kind: 'luks', luks: { header, area }, transform: luksCipher(header, key), unlocked: { key, secrets: options.secrets } };
}

/**
 * The store data clusters are written through: LUKS encrypts by host
 * offset, so one view serves every cluster. AES needs each write's guest
 * offset: the writer's guest writes encrypt themselves (write.ts #put),
 * and any other data write (preallocation, zero expansion) is refused.
 */
export function cryptDataStore(data: ByteStore, crypt: Qcow2Crypt | undefined): ByteStore {
  if (crypt?.kind === 'aes') return refuseDataWrites(data);
  if (crypt?.kind !== 'luks' || !crypt.transform) return data;
  return new CryptStore(data, crypt.transform, 0, 0, Number.MAX_SAFE_INTEGER);
}

function refuseDataWrites(data: ByteStore): ByteStore {
  const refuse = (): Promise<never> => Promise.reject(new UnsupportedError('This operation cannot write data into a qcow2 image with encrypt.format=aes in vdisk (convert it to encrypt.format=luks)'));
  return new Proxy(data, {
    get(target, prop) {
      if (prop === 'write') return refuse;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * Mapping of an encrypted image: data reads decrypt (AES views per extent,
 * IVs from the guest offset), and block status reports no host offsets,
 * as qemu's qcow2 does for encrypted images.
 */
export function cryptExtents(extents: readonly Extent[], crypt: Qcow2Crypt, raw: ByteStore): Extent[] {
  const transform = crypt.transform;
  return extents.map((e) => {
    if (e.kind === 'data') {
      // Without the key (an info or inspect open) the extents name the ciphertext: layout only, never read.
      const store = transform && crypt.kind === 'aes' ? new CryptStore(raw, transform, 0, e.offset - e.hostOffset, Number.MAX_SAFE_INTEGER) : e.store;
      return { ...e, store, opaque: true };
    }
    if (e.kind === 'zero' && e.allocated) return { kind: 'zero', offset: e.offset, length: e.length, allocated: true };
    if (e.kind === 'unallocated' && e.store) return { kind: 'unallocated', offset: e.offset, length: e.length };
    return e;
  });
}

/** `info`'s `encrypt` block (BlockdevQcow2Encryption / ImageInfoSpecificQCow2Encryption). */
export function describeEncrypt(crypt: Qcow2Crypt): Record<string, unknown> {
  return crypt.kind === 'aes' ? { format: 'aes' } : { format: 'luks', ...describeLuks(crypt.luks!.header) };
}


/** `amend -o encrypt.*`: LUKS keyslot management on the image's crypto area. */
export async function amendEncryption(store: ByteStore, crypt: Qcow2Crypt, values: ReadonlyMap<string, OptionValue>, force: boolean): Promise<void> {
  if (!crypt.luks || !crypt.unlocked) throw new InvalidArgumentError("Parameter 'encrypt.key-secret' is required for cipher");
  await amendLuksKeyslots(areaOf(store, crypt.luks.area), crypt.luks.header, crypt.unlocked.key, values, force, crypt.unlocked.secrets, 'encrypt.');
}
