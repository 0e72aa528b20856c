/**
 * A forward-only source over a Node `Readable` or any async iterable of
 * byte chunks (a pipe, stdin, an upload): bytes are pulled from it only
 * when a reader asks for them, so the producer's back-pressure reaches
 * the pipe, and at most one chunk beyond the request is held. The first
 * bytes can be looked at without consuming them (probing, wrappers).
 */
import { AbortError, CorruptImageError, IoError, VdiskError } from '../core/errors.js';
import { toAbortError } from '../core/abort.js';

/** Bytes of a source: a Node `Readable` is one. */
export type ByteChunks = AsyncIterable<Uint8Array | string>;

/** Options of {@link StreamSource}. */
export interface StreamSourceOptions {
  /** Name of the source in messages (`-` for stdin). */
  readonly name: string;
  readonly signal?: AbortSignal | undefined;
  /** Called with the bytes of each chunk pulled (progress in bytes consumed). */
  readonly onBytes?: ((n: number) => void) | undefined;
}

/** The error of a stream that ended before `want` more bytes came, at `offset`. */
export function streamEnded(name: string, offset: number, want: number): CorruptImageError {
  return new CorruptImageError(`'${name}': the stream ended at offset ${offset}, ${want} more bytes were expected`, {
    file: name,
    offset,
    reason: 'stream-ended',
  });
}

/** A forward-only source (the drivers' ForwardSource) over chunks pulled on demand. */
export class StreamSource {
  readonly name: string;
  readonly #it: AsyncIterator<Uint8Array | string>;
  readonly #chunks: ByteChunks;
  readonly #signal: AbortSignal | undefined;
  readonly #onBytes: ((n: number) => void) | undefined;
  /** Chunks pulled and not yet consumed, the first one from `#first` on. */
  readonly #queue: Uint8Array[] = [];
  #first = 0;
  #held = 0;
  #position = 0;
  #ended = false;

  constructor(chunks: ByteChunks, options: StreamSourceOptions) {
    this.name = options.name;
    this.#chunks = chunks;
    this.#it = chunks[Symbol.asyncIterator]();
    this.#signal = options.signal;
    this.#onBytes = options.onBytes;
  }

  get position(): number {
    return this.#position;
  }

  /** True once the underlying stream has ended and every byte was consumed. */
  get done(): boolean {
    return this.#ended && this.#held === 0;
  }

  /** Pulls one more chunk; false at the end of the stream. */
  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    if (this.#signal?.aborted) throw toAbortError(this.#signal.reason);
    let r: IteratorResult<Uint8Array | string>;
    try {
      r = await untilAborted(this.#it.next(), this.#signal);
    } catch (err) {
      if (this.#signal?.aborted) throw toAbortError(this.#signal.reason);
      if (err instanceof VdiskError) throw err;
      if (err instanceof Error && err.name === 'AbortError') throw new AbortError('The operation was aborted', { cause: err });
      throw new IoError(`'${this.name}': could not read the stream at offset ${this.#position + this.#held}: ${err instanceof Error ? err.message : String(err)}`, { file: this.name, offset: this.#position + this.#held, cause: err });
    }
    if (r.done) {
      this.#ended = true;
      return false;
    }
    const v = r.value;
    const chunk = typeof v === 'string' ? Buffer.from(v) : v;
    if (chunk.length > 0) {
      this.#queue.push(chunk);
      this.#held += chunk.length;
      this.#onBytes?.(chunk.length);
    }
    return true;
  }

  /** Pulls until `n` bytes are held or the stream ends. */
  async #fill(n: number): Promise<void> {
    while (this.#held < n && (await this.#pull()));
  }

  /** Takes up to `n` held bytes off the front (one view when a single chunk holds them). */
  #take(n: number): Uint8Array {
    const count = Math.min(n, this.#held);
    const head = this.#queue[0];
    if (head && head.length - this.#first >= count) {
      const out = head.subarray(this.#first, this.#first + count);
      this.#drop(count);
      return out;
    }
    const out = new Uint8Array(count);
    let at = 0;
    while (at < count) {
      const c = this.#queue[0] as Uint8Array;
      const k = Math.min(c.length - this.#first, count - at);
      out.set(c.subarray(this.#first, this.#first + k), at);
      at += k;
      this.#drop(k);
    }
    return out;
  }

  #drop(n: number): void {
    let left = n;
    while (left > 0) {
      const c = this.#queue[0] as Uint8Array;
      const k = Math.min(c.length - this.#first, left);
      this.#first += k;
      left -= k;
      if (this.#first === c.length) {
        this.#queue.shift();
        this.#first = 0;
      }
    }
    this.#held -= n;
    this.#position += n;
  }

  /** Up to `n` bytes from the current position, without consuming them (fewer only at the end). */
  async peek(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const count = Math.min(n, this.#held);
    const out = new Uint8Array(count);
    let at = 0;
    for (let i = 0; at < count; i++) {
      const c = this.#queue[i] as Uint8Array;
      const from = i === 0 ? this.#first : 0;
      const k = Math.min(c.length - from, count - at);
      out.set(c.subarray(from, from + k), at);
      at += k;
    }
    return out;
  }

  async read(length: number): Promise<Uint8Array> {
    await this.#fill(length);
    if (this.#held < length) throw streamEnded(this.name, this.#position + this.#held, length - this.#held);
    return this.#take(length);
  }

  async readUpTo(length: number): Promise<Uint8Array> {
    await this.#fill(length);
    return this.#take(length);
  }

  async skip(length: number): Promise<void> {
    let left = length;
    while (left > 0) {
      if (this.#held === 0 && !(await this.#pull())) throw streamEnded(this.name, this.#position, left);
      const k = Math.min(left, this.#held);
      this.#drop(k);
      left -= k;
    }
  }

  /** The rest of the stream as chunks (for a wrapper's decoder), from the current position. */
  async *rest(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.#held === 0 && !(await this.#pull())) return;
      yield this.#take(this.#held);
    }
  }

  /** Stops pulling: the underlying iterator is told to finish (a Readable is destroyed). */
  async close(): Promise<void> {
    this.#queue.length = 0;
    this.#held = 0;
    if (this.#ended) return;
    this.#ended = true;
    // A Readable is destroyed outright: its iterator's return() would wait for a read still pending on a stalled pipe.
    const destroy = (this.#chunks as { destroy?: unknown }).destroy;
    if (typeof destroy === 'function') (destroy as () => void).call(this.#chunks);
    else void this.#it.return?.().catch(() => undefined);
  }
}

/** `p`, or an AbortError as soon as `signal` aborts (a stalled pipe must not hold an aborted job). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toAbortError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
