/**
 * Uploading an image without scratch space: `convertToStream` plans the
 * image first, so the exact length goes into the request's Content-Length
 * (as object stores, Azure page blobs and tar entries need) before the
 * first byte is sent; then the image is produced in order, as fast as the
 * server takes it, in bounded memory.
 *
 * Run: node build/examples/stream-upload.js SOURCE URL [FORMAT] [--compress]
 */
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';

import { convertToStream } from '../src/stream.js';

/** PUTs `source` to `url` as an image of `format`; returns the bytes sent. */
export async function upload(source: string, url: string, format = 'qcow2', compress = false): Promise<number> {
  const { length, stream } = await convertToStream(source, { targetFormat: format, compress });
  const req = request(url, { method: 'PUT', headers: { 'content-length': String(length), 'content-type': 'application/octet-stream' } });
  const answered = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  await pipeline(stream, req);
  const status = await answered;
  if (status < 200 || status > 299) throw new Error(`upload of ${source} to ${url} failed: HTTP ${status}`);
  return length;
}

if (process.argv[1]?.endsWith('stream-upload.js') && process.argv.length >= 4) {
  const [source, url, format] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const sent = await upload(source!, url!, format, process.argv.includes('--compress'));
  console.log(`${source}: ${sent} bytes sent to ${url}`);
}
