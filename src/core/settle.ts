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
