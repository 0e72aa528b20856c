/**
 * `vdisk convert … SRC -`: the image written to stdout, in order, with its
 * length planned first (convertToStream). qemu-img cannot do this (`-`
 * names a file there). The `-p` line goes to stderr, since stdout carries
 * the image.
 */
import { write } from 'node:fs';
import { isatty } from 'node:tty';

import { InvalidArgumentError, IoError } from '../../core/errors.js';
import { Job } from '../../core/job.js';
import { convertToStream, type ConvertToStreamOptions } from '../../jobs/convert-stream.js';
import type { ConvertOptions } from '../../jobs/convert.js';
import { presetByName } from '../../jobs/presets/index.js';
import { archiveOutput } from '../../jobs/presets/archive.js';
import { presetSize } from '../../jobs/presets/convert.js';
import { BlockDevice } from '../../block/device.js';
import type { ImageTarget } from '../../block/chain.js';
import type { CliIo } from '../context.js';
import { awaitWithProgress, type ProgressMode } from '../progress-bar.js';

/** What convert accepts that a stream cannot honour, by option name. */
const NOT_FOR_STREAMS: readonly [string, string][] = [
  ['noCreate', '-n'],
  ['backing', '-B'],
  ['backingFormat', '-F'],
  ['copyRange', '-C'],
  ['targetIsZero', '--target-is-zero'],
  ['salvage', '--salvage'],
  ['bitmaps', '--bitmaps'],
  ['targetImageOpts', '--target-image-opts'],
  ['oob', '-W'],
  ['rate', '-r'],
  ['cache', '-t'],
];

/** Refuses what convert to stdout cannot do, naming the option. */
export function checkStreamable(given: (key: string) => boolean, sources: number): void {
  for (const [key, name] of NOT_FOR_STREAMS) {
    if (given(key)) throw new InvalidArgumentError(`${name} cannot be used when writing the image to stdout`);
  }
  if (sources !== 1) throw new InvalidArgumentError('Only one source can be written to stdout');
  if (isatty(1)) throw new InvalidArgumentError('Refusing to write an image to a terminal: redirect stdout or name an output file');
}

function writeChunk(fd: number, data: Uint8Array, at: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, data, at, data.length - at, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Writes all of `data` to `fd`, waiting out a non-blocking pipe's EAGAIN. */
async function writeAll(fd: number, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; ) {
    try {
      at += await writeChunk(fd, data, at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}

function stdoutError(err: unknown): IoError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EPIPE' ? 'the reader closed the pipe' : err instanceof Error ? err.message : String(err);
  return new IoError(`Could not write the image to stdout: ${why}`, { cause: err });
}

/**
 * Streams `source` to file descriptor 1. The plan pass shows as the first
 * phase of the progress, the bytes written as the second.
 */
export async function convertToStdout(source: ImageTarget, options: ConvertToStreamOptions, io: CliIo, mode: ProgressMode): Promise<void> {
  // stdout is the image: the progress line goes to stderr.
  const progressIo: CliIo = { ...io, stdout: (t) => io.stderr(t) };
  const controller = new AbortController();
  const planned = convertToStream(source, { ...options, signal: controller.signal });
  const { length, stream } = await awaitWithProgress(planned, progressIo, mode, { open: true });
  const send = new Job<void, 'stream'>(async (ctx) => {
    ctx.progress.phase('stream', length);
    const stop = (): void => controller.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const chunk of stream) {
        const bytes = chunk as Uint8Array;
        try {
          await writeAll(1, bytes);
        } catch (err) {
          throw stdoutError(err);
        }
        ctx.progress.advance(bytes.length);
      }
      ctx.progress.finish();
    } finally {
      ctx.signal.removeEventListener('abort', stop);
      stream.destroy();
    }
  });
  await awaitWithProgress(send, progressIo, mode);
}

/**
 * `vdisk convert --preset NAME SRC -`: the preset's output on stdout — an
 * OVA (its length known first) or GCE's .tar.gz (gzip: not known first),
 * or the preset's disk streamed when its format can be.
 */
export async function presetToStdout(source: ImageTarget, name: string, options: ConvertOptions): Promise<void> {
  const preset = presetByName(name);
  const dev = await BlockDevice.open(source, { ...options, format: options.sourceFormat, readOnly: true });
  const size = presetSize(preset, dev.size);
  await dev.close();
  if (!preset.archive) {
    for await (const chunk of (await convertToStream(source, { sourceFormat: options.sourceFormat, trust: options.trust, forceShare: options.forceShare, onWarning: options.onWarning, targetFormat: preset.format, options: [...preset.options] })).stream) await writeStdout(chunk as Uint8Array);
    return;
  }
  const archive = await archiveOutput(source, preset, 'disk', size, options);
  try {
    for await (const chunk of archive.stream) await writeStdout(chunk as Uint8Array);
  } finally {
    archive.stream.destroy();
    await archive.cleanup();
  }
}

async function writeStdout(bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(1, bytes);
  } catch (err) {
    throw stdoutError(err);
  }
}
