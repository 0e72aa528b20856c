/**
 * A FIFO async mutex (QEMU's CoMutex analogue): `lock()` resolves to a
 * release function; waiters are served in arrival order, no busy-waiting.
 */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();

  /** Waits for the lock; call the returned function to release it. */
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.#tail;
    this.#tail = prev.then(() => next);
    return prev.then(() => release);
  }

  /** Runs `fn` holding the lock. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
