/**
 * The browser build (`dist/browser/vdisk.js`, an ES module): judge an image
 * a user picked before uploading it. It runs {@link inspect} and
 * {@link validate} (a cloud's rules) over a {@link BlobStore}: the formats the bytes could be, every file the image
 * names, unknown features, sizes, and a verdict. Nothing on its path needs
 * Node: wrapped uploads (gzip, zip) are judged as they are, not inflated.
 *
 * @example
 * ```ts
 * import { inspect, BlobStore } from 'vdisk/browser';
 * declare const picked: Blob; // e.g. input.files[0] of an <input type="file">
 * const verdict = await inspect(new BlobStore(picked, 'upload.qcow2'));
 * if (!verdict.safe) console.log(verdict.reasons.map((r) => r.message).join('\n'));
 * ```
 *
 * @module vdisk/browser
 */
import { inspect as inspectAny, type InspectOptions, type InspectResult } from './jobs/inspect.js';
import type { ByteStore } from './io/byte-store.js';

export { BlobStore, type BlobLike, type BlobSlice } from './io/blob-store.js';
export { VdiskError, UnsupportedError, CorruptImageError, PolicyError, UnsafeReferenceError } from './core/errors.js';
export type { InspectOptions, InspectResult } from './jobs/inspect.js';
export { validate, type ValidateOptions, type ValidateResult, type RuleResult, type PresetName } from './jobs/validate.js';

/** {@link inspect} of the main entry, for a store (no file names in a browser), without unwrapping. */
export function inspect(store: ByteStore, options: InspectOptions = {}): Promise<InspectResult> {
  return inspectAny(store, { ...options, unwrap: false });
}
