/**
 * A FIFO async mutex (QEMU's CoMutex analogue): `lock()` resolves to a
 * release function; waiters are served in arrival order, no busy-waiting.
 * A free lock is taken at once, without a promise (convert takes one per
 * write); a released lock passes straight to the first waiter.
 */
export class AsyncMutex {
  #held = false;
  readonly #waiters: (() => void)[] = [];

  /** Waits for the lock; call the returned function to release it (once; later calls do nothing). */
  lock(): Promise<() => void> {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#release();
    };
    return this.#take() ? Promise.resolve(release) : new Promise((resolve) => this.#waiters.push(() => resolve(release)));
  }

  /** Runs `fn` holding the lock. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#take()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  /** Takes the lock when it is free. */
  #take(): boolean {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }

  /** Hands the lock to the first waiter, or frees it. */
  #release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }
}
