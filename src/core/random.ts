/**
 * node:crypto on first use: random bytes for identifiers (image UUIDs, VMDK
 * CIDs, temporary names) and the ciphers and hashes of encrypted formats.
 * It is loaded on the first call, not at import: it pulls in a few
 * dozen internal modules, a visible part of a short command's start-up, and
 * only the commands that create something need it.
 */
import { createRequire } from 'node:module';

let crypto: typeof import('node:crypto') | undefined;

/** node:crypto, loaded on first use (ciphers, hashes and random bytes share this one load). */
export function nodeCrypto(): typeof import('node:crypto') {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto;
}

/** `size` cryptographically random bytes (node:crypto's randomBytes). */
export function randomBytes(size: number): Buffer {
  return nodeCrypto().randomBytes(size);
}
