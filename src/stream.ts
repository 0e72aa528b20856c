/**
 * `vdisk/stream`: images as streams. {@link convertToStream} produces an
 * image strictly in order with its exact length known before the first
 * byte (pipes, tar entries, uploads with a Content-Length);
 * `measure(source, { exact: true })` in the main entry gives the same length
 * without producing the stream.
 *
 * @module vdisk/stream
 */
export { convertToStream, type ConvertToStreamOptions, type StreamOutput, type StreamPhase } from './jobs/convert-stream.js';
export {
  convertFromStream,
  type ConvertFromStreamOptions,
  type ConvertFromStreamResult,
  type FromStreamPhase,
  type StreamInput,
} from './jobs/convert-from-stream.js';
export type { StreamWrapper } from './io/unwrap-stream.js';
export type { SpillSettings } from './block/types.js';
