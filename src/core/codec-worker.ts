/**
 * A codec worker thread: runs batches of decode/encode tasks
 * (codec-kernels.ts) and answers each batch with one message, handing the
 * output buffers back without a copy. One batch at a time: the pool sends
 * the next when this one is answered.
 */
import { parentPort } from 'node:worker_threads';

import { runCodecTask, type CodecResult, type CodecTask } from './codec-kernels.js';

/** A task's answer: its result, or why it failed. */
export type BatchAnswer = { readonly ok: true; readonly result: CodecResult } | { readonly ok: false; readonly message: string };

const port = parentPort;
if (port) {
  port.on('message', (tasks: readonly CodecTask[]) => {
    void (async () => {
      const answers: BatchAnswer[] = [];
      const transfer: ArrayBuffer[] = [];
      for (const task of tasks) {
        try {
          const result = await runCodecTask(task);
          const out = result.out;
          if (out && out.buffer instanceof ArrayBuffer) {
            // Only a buffer the output owns whole is handed over (zlib's may be a slice of a larger one).
            const whole = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : new Uint8Array(out);
            answers.push({ ok: true, result: { ...result, out: whole } as CodecResult });
            transfer.push(whole.buffer as ArrayBuffer);
          } else {
            answers.push({ ok: true, result });
          }
        } catch (err) {
          answers.push({ ok: false, message: err instanceof Error ? err.message : String(err) });
        }
      }
      port.postMessage(answers, transfer);
    })();
  });
}
