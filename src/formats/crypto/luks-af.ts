/**
 * LUKS's anti-forensic splitter (crypto/afsplit.c, the LUKS1 spec §2.4):
 * a key is spread over `stripes` blocks so that losing one block of the
 * key material loses the key. Merging XORs each stripe into a running
 * block and diffuses it with the hash; the last stripe XORed with the
 * result is the key.
 */
import { nodeCrypto } from '../../core/random.js';

import { HASH_BYTES, nodeHash, type HashAlg } from './luks-algs.js';

/** Diffuses `block` in place: each digest-sized piece i becomes hash(be32(i) ‖ piece), truncated to the piece. */
function diffuse(hash: HashAlg, block: Buffer): void {
  const digest = HASH_BYTES[hash];
  const name = nodeHash(hash);
  const counter = Buffer.alloc(4);
  for (let i = 0, at = 0; at < block.length; i++, at += digest) {
    const piece = block.subarray(at, Math.min(at + digest, block.length));
    counter.writeUInt32BE(i, 0);
    nodeCrypto().createHash(name).update(counter).update(piece).digest().copy(piece, 0, 0, piece.length);
  }
}

function xorInto(target: Buffer, source: Uint8Array): void {
  for (let i = 0; i < target.length; i++) target[i]! ^= source[i]!;
}

/** Recovers a key of `keyBytes` from `material` (`keyBytes × stripes` bytes at least). */
export function afMerge(hash: HashAlg, keyBytes: number, stripes: number, material: Uint8Array): Buffer {
  const block = Buffer.alloc(keyBytes);
  for (let s = 0; s < stripes - 1; s++) {
    xorInto(block, material.subarray(s * keyBytes, (s + 1) * keyBytes));
    diffuse(hash, block);
  }
  xorInto(block, material.subarray((stripes - 1) * keyBytes, stripes * keyBytes));
  return block;
}

/** Splits `key` into `key.length × stripes` bytes of material: random stripes, the last one chosen so merging gives `key`. */
export function afSplit(hash: HashAlg, key: Uint8Array, stripes: number): Buffer {
  const n = key.length;
  const material = Buffer.alloc(n * stripes);
  nodeCrypto().randomFillSync(material, 0, n * (stripes - 1));
  const block = Buffer.alloc(n);
  for (let s = 0; s < stripes - 1; s++) {
    xorInto(block, material.subarray(s * n, (s + 1) * n));
    diffuse(hash, block);
  }
  const last = material.subarray((stripes - 1) * n);
  last.set(key);
  xorInto(last, block);
  return material;
}
