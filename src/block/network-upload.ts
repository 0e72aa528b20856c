/**
 * Uploads of a whole image to an object store (`s3://bucket/key`), for
 * convert's streamed targets. The store's module is loaded only when such
 * a name is used.
 */
import type { Readable } from 'node:stream';

import type { S3UploadOptions } from '../io/s3/upload.js';
import { parseS3Name } from '../io/s3/url.js';


/** `s3://bucket/key` as printed in messages; throws EINVAL for a name without bucket or key. */
export function objectName(name: string): string {
  return parseS3Name(name).name;
}

/** Uploads `length` bytes of `stream` as the object `name` (see io/s3/upload.ts). */
export async function uploadObject(name: string, source: { readonly length: number; readonly stream: Readable }, options: S3UploadOptions): Promise<void> {
  const { uploadToS3 } = await import('../io/s3/upload.js');
  await uploadToS3(name, source, options);
}
