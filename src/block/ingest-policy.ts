/**
 * The ingest policy: what an import service accepts from an upload, given
 * once and enforced by the block layer's open for every job (open, info,
 * check, map, compare, measure, convert), so no job can forget a check.
 * The format allow-list is applied after probing and before the driver
 * parses anything; the size cap as soon as the driver has read the
 * header; the trust mode by the resolver.
 */
import { PolicyError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { TrustMode } from './resolver.js';

/**
 * What an import service accepts. Every field is optional; giving a policy
 * at all makes the trust mode `none` unless it says otherwise.
 *
 * @example
 * ```ts
 * const policy: IngestPolicy = { allowedFormats: ['qcow2', 'raw'], maxVirtualSize: 64 * 2 ** 30 };
 * await convert('upload.img.gz', 'disk.qcow2', { targetFormat: 'qcow2', policy });
 * ```
 */
export interface IngestPolicy {
  /** Formats the top image (and any backing file) may have; others are refused with EPOLICY. */
  readonly allowedFormats?: readonly string[] | undefined;
  /** Largest virtual size of any image of the chain, in bytes. */
  readonly maxVirtualSize?: number | undefined;
  /** Largest size a compressed or zipped (gzip, zstd, bzip2, zip) upload may inflate to (default LIMITS.maxInflatedBytes, 64 GiB). */
  readonly maxInflatedSize?: number | undefined;
  /** Largest PBKDF2 iteration count an encrypted upload's header may ask for (default 2^24; see SecretOptions.maxPbkdf2Iterations). */
  readonly maxPbkdf2Iterations?: number | undefined;
  /** Inflate wrapped uploads (default true); false reads them as they are (raw, as qemu-img does). */
  readonly unwrap?: boolean | undefined;
  /** Where the private directory for an inflated upload is made (default: `TMPDIR`, see os.tmpdir()). */
  readonly tmpDir?: string | undefined;
  /**
   * How far references inside the upload are followed (default `none`).
   * `untrusted` still follows references to files beside the upload, so a
   * directory shared by several uploads needs `none`.
   */
  readonly trust?: TrustMode | undefined;
}

/** How wrapped uploads are inflated, from the open's options and policy. */
export interface UnwrapSettings {
  readonly enabled: boolean;
  readonly tmpDir: string | undefined;
  readonly maxSize: number;
}

const STRICTNESS: Readonly<Record<TrustMode, number>> = { qemu: 0, untrusted: 1, none: 2 };

/** The trust mode an open runs with: the stricter of the caller's and the policy's (`none` by default). */
export function policyTrust(trust: TrustMode | undefined, policy: IngestPolicy | undefined): TrustMode | undefined {
  if (!policy) return trust;
  const wanted = policy.trust ?? 'none';
  return trust === undefined || STRICTNESS[wanted] > STRICTNESS[trust] ? wanted : trust;
}

/** Unwrapping settings: on unless the caller or the policy turns it off. */
export function unwrapSettings(options: { readonly unwrap?: boolean | undefined; readonly policy?: IngestPolicy | undefined }): UnwrapSettings {
  const p = options.policy;
  return {
    enabled: options.unwrap !== false && p?.unwrap !== false,
    tmpDir: p?.tmpDir,
    maxSize: p?.maxInflatedSize ?? LIMITS.maxInflatedBytes,
  };
}

/** Refuses a format the policy does not allow (called after probing, before the driver parses the image). */
export function checkFormatAllowed(policy: IngestPolicy | undefined, format: string, filename: string): void {
  const allowed = policy?.allowedFormats;
  if (!allowed || allowed.includes(format)) return;
  throw new PolicyError(`Image format '${format}' of '${filename}' is not allowed (allowed: ${allowed.join(', ') || 'none'})`, {
    file: filename,
    reason: 'format-not-allowed',
    data: { format, allowedFormats: [...allowed] },
  });
}

/** Refuses an image whose virtual size is above the policy's cap. */
export function checkVirtualSize(policy: IngestPolicy | undefined, size: number, filename: string): void {
  const max = policy?.maxVirtualSize;
  if (max === undefined || size <= max) return;
  throw new PolicyError(`Virtual size ${size} of '${filename}' is above ${max} bytes, the most allowed (maxVirtualSize)`, {
    file: filename,
    reason: 'virtual-size-limit',
    data: { virtualSize: size, maxVirtualSize: max },
  });
}
