/**
 * Random bytes for identifiers (image UUIDs, VMDK CIDs, temporary names).
 * node:crypto is loaded on the first call, not at import: it pulls in a few
 * dozen internal modules, a visible part of a short command's start-up, and
 * only the commands that create something need it.
 */
import { createRequire } from 'node:module';

let crypto: typeof import('node:crypto') | undefined;

/** `size` cryptographically random bytes (node:crypto's randomBytes). */
export function randomBytes(size: number): Buffer {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto.randomBytes(size);
}
