/**
 * Digests of an image's guest-visible content: what `sha256sum` of
 * `qemu-img convert -O raw` would print, without writing the raw image.
 * convert feeds its copy loop's pieces as they complete (in any order: the
 * digest takes them in guest order, keeping the early ones); compare
 * hashes an image it reads front to back.
 */
import type { Hash } from 'node:crypto';

import { InvalidArgumentError } from '../core/errors.js';
import { crypto } from '../core/lazy-builtins.js';
import type { BlockDevice } from '../block/device.js';
import type { ProgressMeter } from '../core/progress.js';

/** The digests vdisk computes. */
export type DigestAlgorithm = 'sha256' | 'sha384' | 'sha512';

const LENGTHS: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const ZEROS = new Uint8Array(1024 * 1024);
const STATUS_REQUEST = 1 << 30;
const READ = 2 * 1024 * 1024;

/** Checks an algorithm name given by a caller. */
export function digestAlgorithm(name: string): DigestAlgorithm {
  if (name in LENGTHS) return name as DigestAlgorithm;
  throw new InvalidArgumentError(`Unknown digest '${name}': use sha256, sha384 or sha512`);
}

/** A digest written as `ALGORITHM:HEX` (`sha256:9f86…`), or undefined when `text` is not one. */
export function parseDigest(text: string): { algorithm: DigestAlgorithm; hex: string } | undefined {
  const m = /^(sha256|sha384|sha512):([0-9a-fA-F]+)$/.exec(text);
  if (!m) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  return m[2]!.length === LENGTHS[algorithm] ? { algorithm, hex: m[2]!.toLowerCase() } : undefined;
}

function hashZeros(hash: Hash, length: number): void {
  for (let left = length; left > 0; left -= ZEROS.length) hash.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
}

/**
 * A digest fed pieces of the guest in any order. Pieces that arrive ahead
 * of the next expected offset are copied and kept until the gap fills
 * (at most what the copy loop has in flight).
 */
export class OrderedDigest {
  readonly #hash: Hash;
  readonly #ahead = new Map<number, { length: number; data: Uint8Array | undefined }>();
  #next = 0;

  constructor(readonly algorithm: DigestAlgorithm) {
    this.#hash = crypto().createHash(algorithm);
  }

  /** Guest bytes `[offset, offset + length)`: `data`, or zeros when absent. */
  feed(offset: number, length: number, data?: Uint8Array): void {
    if (offset !== this.#next) {
      // Kept past this call: a copy (new Uint8Array; a Buffer's slice() would be a view of a buffer about to be reused).
      this.#ahead.set(offset, { length, data: data === undefined ? undefined : new Uint8Array(data.subarray(0, length)) });
      return;
    }
    this.#take(length, data);
    for (let p = this.#ahead.get(this.#next); p; p = this.#ahead.get(this.#next)) {
      this.#ahead.delete(this.#next);
      this.#take(p.length, p.data);
    }
  }

  #take(length: number, data: Uint8Array | undefined): void {
    if (data) this.#hash.update(data.subarray(0, length));
    else hashZeros(this.#hash, length);
    this.#next += length;
  }

  /** `ALGORITHM:HEX` of everything fed; every byte up to `size` must have been. */
  result(size: number): string {
    if (this.#next !== size || this.#ahead.size > 0) throw new InvalidArgumentError(`digest fed ${this.#next} of ${size} bytes in order`);
    return `${this.algorithm}:${this.#hash.digest('hex')}`;
  }
}

/** The digest of `dev`'s guest content, read front to back (zero ranges hashed without reading). */
export async function digestImage(dev: BlockDevice, algorithm: DigestAlgorithm, ctx: { readonly signal: AbortSignal; readonly progress: Pick<ProgressMeter<never>, 'advance'> }): Promise<string> {
  const digest = new OrderedDigest(algorithm);
  const buf = new Uint8Array(READ);
  for (let at = 0; at < dev.size; ) {
    ctx.signal.throwIfAborted();
    const st = await dev.blockStatus(at, Math.min(dev.size - at, STATUS_REQUEST));
    if (st.length <= 0) throw new InvalidArgumentError(`block status made no progress at offset ${at}`);
    const end = at + st.length;
    if (st.zero || !st.data) {
      digest.feed(at, st.length);
      ctx.progress.advance(st.length);
      at = end;
      continue;
    }
    for (; at < end; ) {
      const n = Math.min(READ, end - at);
      await dev.read(at, buf.subarray(0, n));
      digest.feed(at, n, buf.subarray(0, n));
      ctx.progress.advance(n);
      at += n;
    }
  }
  return digest.result(dev.size);
}
