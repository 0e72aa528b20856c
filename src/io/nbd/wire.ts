/**
 * The byte pipe under an NBD connection: exact reads over a socket (TCP,
 * unix or TLS), with the idle timeout armed only while an answer is owed,
 * and a bounded receive buffer. The fuzz tests swap in a buffer-backed one.
 */
import type { Socket } from 'node:net';

import { IoError, VdiskError } from '../../core/errors.js';
import { closedByServer, noAnswer, socketError } from './errors.js';

/** What the NBD client needs from its transport. */
export interface Wire {
  /** Fills all of `into`; rejects when the peer closes first. */
  readInto(into: Uint8Array): Promise<void>;
  /** Sends `data` (resolves once the socket takes more). */
  write(data: Uint8Array): Promise<void>;
  /** Arms the timeout while an answer is owed, disarms it when none is. */
  setBusy(busy: boolean): void;
  /** Tears the connection down; pending reads reject with `reason`. */
  destroy(reason?: VdiskError): void;
  /** Closes gracefully: what was written is sent first. */
  end?(): void;
}

/** Reads exactly `n` bytes. */
export async function readBytes(wire: Wire, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  await wire.readInto(out);
  return out;
}

/** Bytes buffered ahead of the reader before the socket is paused. */
const HIGH_WATER = 8 * 1024 * 1024;
/** Reads owed at least this much take the socket's bytes straight into their own buffer. */
const DIRECT_MIN = 16 * 1024;
/** The receive buffer of everything else (headers, short replies), copied out of after each read. */
const SCRATCH_SIZE = 64 * 1024;
/**
 * Past a short pending read, the scratch read takes only this much more: the
 * next reply's header (a data chunk's is 28 bytes), not the start of its
 * payload, which would be copied twice instead of landing in place.
 */
const HEADER_ROOM = 32;

/**
 * net.connect's `onread` for a {@link SocketWire}: without it every read
 * allocates a buffer that is then copied into the reader's, which for bulk
 * reads was the client's largest cost. With it the socket reads into the
 * pending reader's own buffer when it is owed a long read, else into one
 * reused scratch buffer. Bytes that come before the wire is made wait for it.
 */
export class ReadRouter {
  #wire: SocketWire | undefined;
  #early: Buffer[] = [];
  readonly #scratch = new Uint8Array(SCRATCH_SIZE);
  /** Pass as net.connect's `onread`. */
  readonly onread = {
    buffer: (): Uint8Array => this.#wire?.nextBuffer(this.#scratch) ?? this.#scratch,
    callback: (n: number, buf: Uint8Array): boolean => {
      if (this.#wire) return this.#wire.received(n, buf);
      this.#early.push(Buffer.from(buf.subarray(0, n)));
      return true;
    },
  };

  /** Routes reads to `wire` from now on; the bytes read so far. */
  bind(wire: SocketWire): Buffer[] {
    this.#wire = wire;
    const early = this.#early;
    this.#early = [];
    return early;
  }
}

/** A {@link Wire} over a connected socket. */
export class SocketWire implements Wire {
  readonly #socket: Socket;
  readonly #name: string;
  readonly #timeoutMs: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #pending: { into: Uint8Array; filled: number; resolve: () => void; reject: (e: unknown) => void } | undefined;
  #failure: VdiskError | undefined;
  #busy = false;
  /** The pending reader's buffer the socket reads into next, if it does. */
  #direct: Uint8Array | undefined;
  /** Reading stopped when a direct read ended, until the next reader comes. */
  #stopped = false;
  #drainWaiters: (() => void)[] = [];
  readonly #handlers: { readonly data: (b: Buffer) => void; readonly drain: () => void; readonly error: (e: Error) => void; readonly close: () => void; readonly timeout: () => void };

  /** `router` when the socket was connected with its `onread` (then no 'data' events come). */
  constructor(socket: Socket, name: string, timeoutMs: number, router?: ReadRouter) {
    this.#socket = socket;
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#handlers = {
      data: (b: Buffer) => this.#onData(b),
      drain: () => this.#wakeWriters(),
      error: (e: Error) => this.#fail(socketError(e, name)),
      close: () => this.#fail(closedByServer(name)),
      timeout: () => {
        if (this.#busy) this.destroy(noAnswer(name, timeoutMs));
      },
    };
    const h = this.#handlers;
    socket.on('data', h.data).on('drain', h.drain).on('error', h.error).on('close', h.close).on('timeout', h.timeout);
    socket.setTimeout(timeoutMs);
    for (const b of router?.bind(this) ?? []) this.#onData(b);
  }

  /**
   * The buffer the socket reads into next: the rest of a long pending read,
   * else `scratch`, cut to the rest of a short pending read and the next
   * header.
   */
  nextBuffer(scratch: Uint8Array): Uint8Array {
    // Stopped: the read after the resume takes the next reply's header only.
    if (this.#stopped) return scratch.subarray(0, HEADER_ROOM);
    const p = this.#pending;
    const left = p && this.#chunks.length === 0 ? p.into.length - p.filled : 0;
    this.#direct = p && left >= DIRECT_MIN ? p.into.subarray(p.filled) : undefined;
    return this.#direct ?? (left > 0 ? scratch.subarray(0, left + HEADER_ROOM) : scratch);
  }

  /**
   * `n` bytes the socket read into `buf` (from {@link nextBuffer}); false
   * stops reading (net's `onread` contract) when they complete the pending
   * read. The socket asks for its next buffer before the reader's
   * continuation runs, so it would read the next reply's header and the
   * start of its payload into the scratch buffer and copy them twice;
   * stopped, it resumes when the continuation asks for more.
   */
  received(n: number, buf: Uint8Array): boolean {
    const p = this.#pending;
    if (buf !== this.#direct) this.#fromScratch(buf.subarray(0, n));
    // A direct read lands in the pending reader's buffer; if that reader already failed, so did the connection.
    else if (p) {
      p.filled += n;
      if (p.filled === p.into.length) {
        this.#pending = undefined;
        p.resolve();
      }
    }
    this.#stopped = p !== undefined && this.#pending === undefined;
    return !this.#stopped;
  }

  /** Bytes read into the scratch buffer: what the pending reader wants goes to it, the rest is kept (copied). */
  #fromScratch(bytes: Uint8Array): void {
    const p = this.#pending;
    let used = 0;
    if (p && this.#chunks.length === 0) {
      used = Math.min(bytes.length, p.into.length - p.filled);
      p.into.set(bytes.subarray(0, used), p.filled);
      p.filled += used;
      if (p.filled === p.into.length) {
        this.#pending = undefined;
        p.resolve();
      }
    }
    if (used < bytes.length) this.#onData(Buffer.from(bytes.subarray(used)));
  }

  /** Lets go of the socket (for TLS to take it over); nothing may be buffered. */
  detach(): Socket {
    const h = this.#handlers;
    this.#socket.off('data', h.data).off('drain', h.drain).off('error', h.error).off('close', h.close).off('timeout', h.timeout);
    this.#socket.setTimeout(0);
    // TLS reports the socket's failures from here on; a late error must not go unheard as an uncaught one.
    this.#socket.on('error', () => undefined);
    if (this.#buffered > 0) throw new IoError(`NBD protocol error from '${this.#name}': data before the TLS handshake`, { file: this.#name });
    return this.#socket;
  }

  readInto(into: Uint8Array): Promise<void> {
    if (this.#pending) return Promise.reject(new Error('SocketWire: one reader at a time'));
    if (this.#failure && this.#buffered < into.length) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending = { into, filled: 0, resolve, reject };
      this.#drain();
      if (this.#stopped && this.#pending !== undefined) {
        this.#stopped = false;
        // Paused for the high-water mark instead: #drain resumes it.
        if (!this.#socket.isPaused()) this.#socket.resume();
      }
    });
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#socket.write(data)) return Promise.resolve();
    // A socket that fails before draining rejects the reader; the writer goes on and is answered by it.
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  setBusy(busy: boolean): void {
    // Restart the idle clock when an answer becomes owed; while one already is, the socket's own
    // activity (each request written, each reply read) restarts it, and re-arming per request cost
    // a timer list insertion each.
    if (busy && !this.#busy) this.#socket.setTimeout(this.#timeoutMs);
    this.#busy = busy;
  }

  destroy(reason?: VdiskError): void {
    this.#fail(reason ?? new IoError(`Connection to '${this.#name}' closed`, { file: this.#name, errno: 5 }));
    this.#socket.destroy();
  }

  end(): void {
    this.#fail(new IoError(`Connection to '${this.#name}' closed`, { file: this.#name, errno: 5 }));
    this.#socket.end();
  }

  #onData(b: Buffer): void {
    this.#chunks.push(b);
    this.#buffered += b.length;
    this.#drain();
    if (this.#buffered > HIGH_WATER) this.#socket.pause();
  }

  #drain(): void {
    const p = this.#pending;
    if (!p) return;
    while (p.filled < p.into.length && this.#chunks.length > 0) {
      const head = this.#chunks[0] as Buffer;
      const n = Math.min(head.length, p.into.length - p.filled);
      p.into.set(head.subarray(0, n), p.filled);
      p.filled += n;
      this.#buffered -= n;
      if (n === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
    }
    if (this.#buffered <= HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    if (p.filled === p.into.length) {
      this.#pending = undefined;
      p.resolve();
    } else if (this.#failure) {
      this.#pending = undefined;
      p.reject(this.#failure);
    }
  }

  #fail(err: VdiskError): void {
    this.#failure ??= err;
    this.#drain();
    this.#wakeWriters();
  }

  #wakeWriters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}
