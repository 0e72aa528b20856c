/**
 * Waits for every promise to settle, then throws the first rejection (in
 * the order given). Unlike Promise.all, nothing is still running when it
 * throws: buffers can be reused and files closed safely afterwards.
 */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  if (promises.length === 1) {
    await promises[0];
    return;
  }
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Runs `body`, then `close` whether it succeeded or not. When `body` failed
 * its error is the one thrown, even if `close` fails too (usually the same
 * cause again: a full disk, a file size limit), as qemu-img reports the
 * failed step; a `close` failing after a success is thrown.
 */
export async function closingAfter<T>(body: () => Promise<T>, close: () => Promise<void>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  await close();
  return result;
}
