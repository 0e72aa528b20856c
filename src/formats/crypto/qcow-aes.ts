/**
 * The legacy "qcow" AES cipher of qcow (v1) and qcow2's `encrypt.format=aes`
 * (qemu's crypto/block-qcow.c): AES-128-CBC over 512-byte sectors, each
 * with the plain64 IV (the sector number, little-endian, zero-padded to 16
 * bytes), keyed by the passphrase's first 16 bytes, zero-padded. It is
 * weak by design (no key derivation, predictable IVs); qemu only reads and
 * writes it for old images, and so does vdisk.
 */
import type { Cipher, Decipher } from 'node:crypto';
import { nodeCrypto } from '../../core/random.js';

/** The sector size the IVs count in. */
export const QCOW_AES_SECTOR = 512;

/** qcrypto_block_qcow_init's key: the passphrase's bytes, truncated or zero-padded to 16. */
export function qcowAesKey(passphrase: string): Uint8Array {
  const key = new Uint8Array(16);
  key.set(new TextEncoder().encode(passphrase).subarray(0, 16));
  return key;
}

function plain64(sector: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(0, BigInt(sector), true);
  return iv;
}

function run(make: (iv: Uint8Array) => Cipher | Decipher, data: Uint8Array, firstSector: number): void {
  if (data.length % QCOW_AES_SECTOR !== 0) throw new RangeError(`qcow AES works on whole ${QCOW_AES_SECTOR}-byte sectors, got ${data.length} bytes`);
  for (let at = 0, sector = firstSector; at < data.length; at += QCOW_AES_SECTOR, sector++) {
    const c = make(plain64(sector)).setAutoPadding(false);
    const out = c.update(data.subarray(at, at + QCOW_AES_SECTOR));
    data.set(out, at);
    c.final();
  }
}

/** A keyed qcow AES cipher; both directions work in place on whole sectors. */
export class QcowAesCipher {
  constructor(private readonly key: Uint8Array) {
    if (key.length !== 16) throw new RangeError('qcow AES keys are 16 bytes');
  }

  /** Encrypts `data` in place; `firstSector` numbers its first 512-byte sector (the IV). */
  encrypt(data: Uint8Array, firstSector: number): void {
    run((iv) => nodeCrypto().createCipheriv('aes-128-cbc', this.key, iv), data, firstSector);
  }

  /** Decrypts `data` in place; `firstSector` numbers its first 512-byte sector (the IV). */
  decrypt(data: Uint8Array, firstSector: number): void {
    run((iv) => nodeCrypto().createDecipheriv('aes-128-cbc', this.key, iv), data, firstSector);
  }
}
