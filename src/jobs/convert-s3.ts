/**
 * convert to `s3://bucket/key`: the image is produced in order by
 * convertToStream and uploaded (io/s3/upload.ts) as it is produced, with
 * no local copy; an upload that fails or is cancelled leaves no object.
 */
import { UnsupportedError } from '../core/errors.js';
import type { JobContext } from '../core/job.js';
import { objectName, uploadObject } from '../block/network-upload.js';
import type { ConvertOptions, ConvertPhase, ConvertResult, Source } from './convert.js';
import { convertToStream } from './convert-stream.js';

/** convert's options a streamed upload cannot honour. */
const NOT_FOR_S3: readonly (keyof ConvertOptions)[] = ['backingFile', 'backingFormat', 'targetIsZero', 'copyOffload', 'salvage', 'bitmaps', 'outOfOrder', 'rateLimit', 'targetCache'];

/** Converts the single source to an image uploaded to `target` (`s3://bucket/key`). */
export async function convertToS3(sources: readonly Source[], target: string, opts: ConvertOptions, ctx: JobContext<ConvertPhase>): Promise<ConvertResult> {
  const name = objectName(target);
  for (const key of NOT_FOR_S3) {
    if (opts[key] !== undefined && opts[key] !== false) throw new UnsupportedError(`${key} cannot be used with an s3:// target`, { file: name });
  }
  const [source] = sources;
  if (source === undefined || sources.length !== 1) throw new UnsupportedError('Only one source can be converted to an s3:// target', { file: name });
  const { onProgress: _ignored, sparseSize, uploadPartSize, ...rest } = opts;
  void _ignored;
  const output = await convertToStream(source, { ...rest, sparseSize: sparseSize === 0 ? 0 : undefined, signal: ctx.signal });
  ctx.progress.phase('copy', output.length);
  await uploadObject(target, output, { ...opts.network, signal: ctx.signal, partSize: uploadPartSize, onProgress: (n) => ctx.progress.advance(n) });
  ctx.progress.finish();
  // The upload's bytes are the image's: data and metadata alike.
  return { target: name, format: output.format, size: output.size, dataBytes: output.length, zeroBytes: 0 };
}
