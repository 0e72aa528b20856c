/**
 * The algorithm names of QEMU's LUKS driver (crypto/block-luks.c and the
 * QAPI enums of qapi/crypto.json) and how they map to LUKS header strings
 * and to node:crypto. QEMU also knows cast5, serpent and twofish; node's
 * OpenSSL has none of them, so those names parse but are refused where
 * a key would be used, with qemu's own message for an algorithm its build
 * lacks.
 */
import { nodeCrypto } from '../../core/random.js';

import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';

/** QAPI QCryptoCipherAlgorithm values LUKS can name, with their key bytes. */
const CIPHER_KEY_BYTES: Readonly<Record<string, number>> = {
  'aes-128': 16, 'aes-192': 24, 'aes-256': 32,
  'des': 8, '3des': 24,
  'cast5-128': 16,
  'serpent-128': 16, 'serpent-192': 24, 'serpent-256': 32,
  'twofish-128': 16, 'twofish-192': 24, 'twofish-256': 32,
};

/** QAPI QCryptoCipherMode values. */
export const CIPHER_MODES = ['ecb', 'cbc', 'xts', 'ctr'] as const;
/** QAPI QCryptoIVGenAlgorithm values. */
export const IVGEN_ALGS = ['plain', 'plain64', 'essiv'] as const;
/** QAPI QCryptoHashAlgorithm values. */
export const HASH_ALGS = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'ripemd160'] as const;

export type CipherMode = (typeof CIPHER_MODES)[number];
export type IvgenAlg = (typeof IVGEN_ALGS)[number];
export type HashAlg = (typeof HASH_ALGS)[number];

/** Digest bytes of each hash. */
export const HASH_BYTES: Readonly<Record<HashAlg, number>> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64, ripemd160: 20 };

/** The cipher family as a LUKS header names it (`aes`), from a QAPI name (`aes-256`). */
function cipherFamily(alg: string): string {
  return alg.replace(/-\d+$/, '');
}

/** The QAPI cipher name for a header's family and per-cipher key bytes (qcrypto_block_luks_cipher_name_lookup). */
export function cipherAlgFor(family: string, keyBytes: number): string | undefined {
  const name = `${family}-${keyBytes * 8}`;
  return CIPHER_KEY_BYTES[name] === keyBytes ? name : undefined;
}

/** Refuses a value outside a QAPI enum with qemu's message. */
export function enumValue<T extends string>(values: readonly T[], name: string, value: string): T {
  if ((values as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(`Parameter '${name}' does not accept value '${value}'`);
}

/** A QAPI cipher name, checked (`name` is the option as the user spelled it). */
export function cipherAlgValue(value: string, name = 'cipher-alg'): string {
  if (CIPHER_KEY_BYTES[value] === undefined) throw new InvalidArgumentError(`Parameter '${name}' does not accept value '${value}'`);
  return value;
}

/**
 * The node:crypto cipher for a QAPI algorithm and mode (`aes-256-xts`
 * takes the doubled key). Only AES is in node's OpenSSL among LUKS's
 * ciphers.
 *
 * @throws {UnsupportedError} `Algorithm 'x' not supported` (qemu's message for a build without it)
 */
export function nodeCipher(alg: string, mode: CipherMode): string {
  const family = cipherFamily(alg);
  const bits = (CIPHER_KEY_BYTES[alg] ?? 0) * 8;
  const name = family === 'aes' ? `aes-${bits}-${mode}` : '';
  if (name === '' || !nodeCrypto().getCiphers().includes(name)) throw new UnsupportedError(`Algorithm '${alg}' not supported`, { data: { cipherAlg: alg, cipherMode: mode } });
  return name;
}

/** The node:crypto hash name of a QAPI hash, refused when node lacks it. */
export function nodeHash(alg: HashAlg): string {
  if (!nodeCrypto().getHashes().includes(alg)) throw new UnsupportedError(`Hash algorithm '${alg}' not supported`, { data: { hashAlg: alg } });
  return alg;
}

/** Cipher block bytes (the IV size): 16 for every LUKS cipher but cast5's 8. */
export function blockBytes(alg: string): number {
  return cipherFamily(alg) === 'cast5' ? 8 : 16;
}

/** Master key bytes of an algorithm and mode: XTS takes two keys. */
export function masterKeyBytes(alg: string, mode: CipherMode): number {
  return (CIPHER_KEY_BYTES[alg] ?? 0) * (mode === 'xts' ? 2 : 1);
}

/**
 * The ESSIV cipher (qcrypto_block_luks_essiv_cipher): the cipher itself
 * when the hash's digest is its key's size, else the AES, Serpent or
 * Twofish of the digest's size; the reason qemu gives when there is none.
 */
export function essivCipherFor(alg: string, hash: HashAlg): { name: string } | { reason: string } {
  const digest = HASH_BYTES[hash];
  if (CIPHER_KEY_BYTES[alg] === digest) return { name: alg };
  const family = cipherFamily(alg);
  const label = family === 'aes' ? 'AES' : family === 'serpent' ? 'Serpent' : family === 'twofish' ? 'Twofish' : undefined;
  if (label === undefined) return { reason: `Cipher ${alg} not supported with essiv` };
  const name = cipherAlgFor(family, digest);
  return name === undefined ? { reason: `No ${label} cipher with key size ${digest} available` } : { name };
}

/** {@link essivCipherFor}, refusing what has no ESSIV cipher. */
export function essivCipher(alg: string, hash: HashAlg): string {
  const r = essivCipherFor(alg, hash);
  if ('reason' in r) throw new InvalidArgumentError(r.reason);
  return r.name;
}
