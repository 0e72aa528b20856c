/**
 * Uploads a stream of known length as one S3 object: one PUT when it fits
 * one part, else a multipart upload whose part size keeps the part count
 * at most 10 000 for any length. Parts are buffered (so each can be
 * retried), at most `concurrency + 1` of them at once. On failure or abort
 * the multipart upload is aborted on the server: no parts, no object.
 */
import type { Readable } from 'node:stream';

import { InvalidArgumentError, IoError } from '../../core/errors.js';
import type { NetworkOptions } from '../network-options.js';
import { S3Client } from './client.js';
import { loadS3Config } from './config.js';
import { parseS3Name } from './url.js';

/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's most parts per upload. */
export const MAX_PARTS = 10_000;
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MIB = 1024 * 1024;

/** Options of {@link uploadToS3}. */
export interface S3UploadOptions extends NetworkOptions {
  /** Smallest part size (default 8 MiB; at least 5 MiB); raised as needed to stay within 10 000 parts. */
  partSize?: number | undefined;
  /** Called with the bytes of each part once it is stored. */
  onProgress?: ((bytes: number) => void) | undefined;
}

/**
 * The part size for `length` bytes: `minimum`, or larger (whole MiB) when
 * that many parts would exceed 10 000.
 *
 * @throws {InvalidArgumentError} EINVAL for a part size outside 5 MiB..5 GiB, or a length S3 cannot hold
 */
export function choosePartSize(length: number, minimum = DEFAULT_PART_SIZE): number {
  if (!Number.isSafeInteger(minimum) || minimum < MIN_PART_SIZE || minimum > MAX_PART_SIZE) throw new InvalidArgumentError(`S3 part size must be between ${MIN_PART_SIZE} and ${MAX_PART_SIZE} bytes`);
  const size = Math.max(minimum, Math.ceil(length / MAX_PARTS / MIB) * MIB);
  if (size > MAX_PART_SIZE) throw new InvalidArgumentError(`An image of ${length} bytes does not fit in an S3 object`);
  return size;
}

/** Reads `stream` into buffers of `size` bytes (the last may be shorter). */
async function* partsOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let part = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(size - filled, chunk.length - at);
      chunk.copy(part, filled, at, at + n);
      filled += n;
      at += n;
      if (filled === size) {
        yield part;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}

function xmlField(body: Uint8Array, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(Buffer.from(body).toString('utf8'))?.[1];
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

async function putWhole(client: S3Client, stream: Readable, length: number, opts: S3UploadOptions): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const body = Buffer.concat(chunks);
  if (body.length !== length) throw new IoError(`Could not upload '${client.location.name}': the image was ${body.length} bytes, ${length} were planned`, { file: client.location.name });
  await client.request({ method: 'PUT', body, maxBody: 0, what: 'Could not upload' });
  opts.onProgress?.(length);
}

/** Uploads the parts, at most `concurrency` in flight; returns their ETags in order. */
async function putParts(client: S3Client, uploadId: string, stream: Readable, size: number, opts: S3UploadOptions): Promise<string[]> {
  const etags: string[] = [];
  const inFlight = new Set<Promise<void>>();
  let failed: unknown;
  let number = 0;
  try {
    for await (const part of partsOf(stream, size)) {
      const n = ++number;
      const p = client
        .request({ method: 'PUT', query: [['partNumber', String(n)], ['uploadId', uploadId]], body: part, maxBody: 0, what: `Could not upload part ${n} of` })
        .then((res) => {
          const etag = res.headers['etag'];
          if (typeof etag !== 'string') throw new IoError(`Could not upload part ${n} of '${client.location.name}': no ETag in the answer`, { file: client.location.name });
          etags[n - 1] = etag;
          opts.onProgress?.(part.length);
        })
        .catch((err: unknown) => void (failed ??= err))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      // Back-pressure: the stream is not read on while every slot is busy.
      while (inFlight.size >= client.concurrency && failed === undefined) await Promise.race(inFlight);
      if (failed !== undefined) break;
    }
  } finally {
    // Parts still in flight settle before the upload is completed or aborted.
    await Promise.allSettled(inFlight);
  }
  if (failed !== undefined) throw failed;
  return etags;
}

async function multipart(client: S3Client, stream: Readable, size: number, opts: S3UploadOptions): Promise<void> {
  const created = await client.request({ method: 'POST', query: [['uploads', '']], maxBody: 64 * 1024, what: 'Could not start the upload of' });
  const uploadId = xmlField(created.body, 'UploadId');
  if (uploadId === undefined) throw new IoError(`Could not start the upload of '${client.location.name}': no UploadId in the answer`, { file: client.location.name });
  try {
    const etags = await putParts(client, uploadId, stream, size, opts);
    const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(e)}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const done = await client.request({ method: 'POST', query: [['uploadId', uploadId]], headers: { 'content-type': 'application/xml' }, body: Buffer.from(xml), maxBody: 64 * 1024, what: 'Could not complete the upload of' });
    // S3 can answer 200 and still fail the completion in the body.
    const code = xmlField(done.body, 'Code');
    if (code !== undefined) throw new IoError(`Could not complete the upload of '${client.location.name}': ${code}: ${xmlField(done.body, 'Message') ?? ''}`, { file: client.location.name });
  } catch (err) {
    stream.destroy();
    // A fresh signal: the abort must reach the server even when the job was cancelled.
    await client.request({ method: 'DELETE', query: [['uploadId', uploadId]], maxBody: 64 * 1024, what: 'Could not abort the upload of', signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
    throw err;
  }
}

/**
 * Uploads `length` bytes from `stream` to `s3://bucket/key`.
 *
 * @throws {PermissionError} EPERM when the credentials are refused
 * @throws {IoError} EIO when the service fails past the retries (the multipart upload is aborted)
 * @throws {AbortError} EABORTED when `signal` aborts (the multipart upload is aborted)
 */
export async function uploadToS3(url: string, source: { readonly length: number; readonly stream: Readable }, opts: S3UploadOptions = {}): Promise<void> {
  const location = parseS3Name(url);
  const size = choosePartSize(source.length, opts.partSize);
  const client = new S3Client(await loadS3Config(), location, opts);
  try {
    if (source.length <= size) await putWhole(client, source.stream, source.length, opts);
    else await multipart(client, source.stream, size, opts);
  } finally {
    source.stream.destroy();
    client.close();
  }
}
