/**
 * raw, streamed: the guest bytes themselves, every one of them.
 */
import type { StreamPlan, StreamWriter, StreamWriterRequest } from '../driver.js';
import { checkProtocolCreateOptions } from '../protocol-options.js';

const UNIT = 1024 * 1024;

/** A raw image in order: `size` bytes, holes as zeros. */
export function rawStreamWriter(request: StreamWriterRequest, ownOptions: ReadonlySet<string>): StreamWriter {
  checkProtocolCreateOptions(request.options, ownOptions);
  // preallocation is moot: a stream sends every byte anyway.
  return {
    unit: UNIT,
    storesEveryUnit: true,
    length: (plan: StreamPlan) => plan.size,
    async *emit(plan: StreamPlan, data: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      let at = 0;
      for await (const unit of data) {
        const n = Math.min(unit.length, plan.size - at);
        yield n === unit.length ? unit : unit.subarray(0, n);
        at += n;
      }
    },
  };
}
