/**
 * PBKDF2 for LUKS keyslots and the master-key digest: the derivation
 * itself (node:crypto, on the libuv pool), the iteration counts QEMU
 * calibrates for `iter-time` (crypto/pbkdf.c, qcrypto_pbkdf2_count_iters)
 * and the cap on counts read from an image. QEMU derives whatever a
 * header asks for; a header asking for 2^31 iterations would keep an
 * open busy for minutes per slot, so vdisk refuses counts above a cap
 * before deriving anything.
 */
import { nodeCrypto } from '../../core/random.js';

import { PolicyError } from '../../core/errors.js';
import { nodeHash, type HashAlg } from './luks-algs.js';

/** node:crypto's pbkdf2 (on the thread pool) as a promise; node:crypto loads on the first derivation. */
function derive(password: Uint8Array, salt: Uint8Array, iterations: number, bytes: number, digest: string): Promise<Buffer> {
  return new Promise((resolve, reject) => nodeCrypto().pbkdf2(password, salt, iterations, bytes, digest, (err, key) => (err ? reject(err) : resolve(key))));
}

/**
 * Default cap on the PBKDF2 iterations one derivation may ask for
 * (`maxPbkdf2Iterations`): 2^24 (about 16.8 million) is several times what
 * `iter-time=2000` gives on a fast host today, and a few seconds of work.
 */
const DEFAULT_MAX_PBKDF2_ITERATIONS = 2 ** 24;

/** PBKDF2 of `password`, or the cap's error when `iterations` is above `max`. */
export async function luksPbkdf2(hash: HashAlg, password: Uint8Array, salt: Uint8Array, iterations: number, bytes: number): Promise<Buffer> {
  return derive(password, salt, iterations, bytes, nodeHash(hash));
}

/** The open's cap on iterations (the smaller of the caller's and the policy's; the default without either). */
export function pbkdf2Cap(...caps: readonly (number | undefined)[]): number {
  const given = caps.filter((c): c is number => c !== undefined);
  return given.length === 0 ? DEFAULT_MAX_PBKDF2_ITERATIONS : Math.min(...given);
}

/**
 * Refuses a count above the cap, before any work.
 *
 * @throws {PolicyError} EPOLICY (`reason: 'pbkdf2-iterations-limit'`), with `data.iterations` and `data.maxPbkdf2Iterations`
 */
export function checkPbkdf2Iterations(iterations: number, max: number, what: string, file?: string): void {
  if (iterations <= max) return;
  throw new PolicyError(`LUKS ${what} asks for ${iterations} PBKDF2 iterations, more than the ${max} allowed (maxPbkdf2Iterations)`, {
    file,
    reason: 'pbkdf2-iterations-limit',
    data: { iterations, maxPbkdf2Iterations: max },
  });
}

/**
 * PBKDF2 iterations per second for this hash and key length, measured as
 * qemu measures it: grow the count until one run takes long enough to
 * time, then scale. QEMU times 500 ms; vdisk times at most `windowMs`
 * (as little as the iteration time asked for, at least 50 ms) so a short
 * `iter-time` also creates quickly.
 */
export async function pbkdf2PerSecond(hash: HashAlg, password: Uint8Array, salt: Uint8Array, bytes: number, windowMs: number): Promise<number> {
  const window = Math.min(500, Math.max(50, windowMs));
  let iterations = 1 << 12;
  for (;;) {
    const start = process.hrtime.bigint();
    await luksPbkdf2(hash, password, salt, iterations, bytes);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (ms >= window) return Math.floor((iterations * 1000) / ms);
    iterations = ms < window / 10 ? iterations * 10 : Math.ceil((iterations * window * 1.1) / ms);
  }
}
