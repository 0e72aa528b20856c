/**
 * Sector encryption as QEMU's LUKS does it (crypto/block.c,
 * crypto/ivgen-*.c): data in 512-byte sectors, each run through the
 * cipher on its own with an IV from the sector number: `plain` (the low
 * 32 bits, little-endian), `plain64` (64 bits, little-endian) or `essiv`
 * (plain64 encrypted in ECB mode under the hash of the key), zero-padded
 * to the cipher's block size.
 */
import { nodeCrypto } from '../../core/random.js';

import { blockBytes, essivCipher, nodeCipher, nodeHash, type CipherMode, type HashAlg, type IvgenAlg } from './luks-algs.js';

/** The sector the IVs count in. */
export const LUKS_SECTOR = 512;

/** What a sector cipher is made of. */
export interface SectorCipherSpec {
  readonly cipherAlg: string;
  readonly cipherMode: CipherMode;
  readonly ivgenAlg: IvgenAlg;
  /** The ESSIV hash; only used with `essiv`. */
  readonly ivgenHashAlg?: HashAlg | undefined;
}

/** A keyed sector cipher; both directions work in place on whole sectors. */
export class SectorCipher {
  private readonly name: string;
  private readonly ivBytes: number;
  private readonly essiv: { name: string; key: Buffer } | undefined;

  /** @throws {UnsupportedError} when node:crypto lacks the algorithm */
  constructor(spec: SectorCipherSpec, private readonly key: Uint8Array) {
    this.name = nodeCipher(spec.cipherAlg, spec.cipherMode);
    this.ivBytes = blockBytes(spec.cipherAlg);
    if (spec.ivgenAlg === 'essiv') {
      const hash = spec.ivgenHashAlg ?? 'sha256';
      const essivAlg = essivCipher(spec.cipherAlg, hash);
      this.essiv = { name: nodeCipher(essivAlg, 'ecb'), key: nodeCrypto().createHash(nodeHash(hash)).update(key).digest() };
    }
    this.plain32 = spec.ivgenAlg === 'plain';
    this.ecb = spec.cipherMode === 'ecb';
  }

  private readonly plain32: boolean;
  private readonly ecb: boolean;

  private iv(sector: number): Buffer | null {
    if (this.ecb) return null;
    const iv = Buffer.alloc(this.ivBytes);
    if (this.plain32) iv.writeUInt32LE(sector % 2 ** 32, 0);
    else iv.writeBigUInt64LE(BigInt(sector), 0);
    if (!this.essiv) return iv;
    const c = nodeCrypto().createCipheriv(this.essiv.name, this.essiv.key, null).setAutoPadding(false);
    return Buffer.concat([c.update(iv), c.final()]);
  }

  private run(encrypt: boolean, data: Uint8Array, firstSector: number): void {
    if (data.length % LUKS_SECTOR !== 0) throw new RangeError(`LUKS works on whole ${LUKS_SECTOR}-byte sectors, got ${data.length} bytes`);
    for (let at = 0, sector = firstSector; at < data.length; at += LUKS_SECTOR, sector++) {
      const iv = this.iv(sector);
      const c = encrypt ? nodeCrypto().createCipheriv(this.name, this.key, iv) : nodeCrypto().createDecipheriv(this.name, this.key, iv);
      c.setAutoPadding(false);
      const out = c.update(data.subarray(at, at + LUKS_SECTOR));
      data.set(out, at);
      c.final();
    }
  }

  /** Encrypts `data` in place; `firstSector` numbers its first sector (the IV). */
  encrypt(data: Uint8Array, firstSector: number): void {
    this.run(true, data, firstSector);
  }

  /** Decrypts `data` in place; `firstSector` numbers its first sector (the IV). */
  decrypt(data: Uint8Array, firstSector: number): void {
    this.run(false, data, firstSector);
  }
}
