/**
 * A read-only NBD connection whose replies are received by a thread of the
 * native module (native/nbd_reader.c) straight into the callers' buffers.
 * The main thread only sends requests and settles promises, so a server
 * streaming into a unix socket's small buffer is never held up by the
 * event loop's other work. Negotiated in JavaScript without structured
 * replies: every reply is the 16-byte simple reply, then exactly the bytes
 * asked for.
 */
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

import { IoError, type VdiskError } from '../../core/errors.js';
import { native } from '../native.js';
import * as codec from './codec.js';
import * as C from './constants.js';
import { named, serverError, socketError } from './errors.js';
import type { ExportInfo } from './handshake.js';
import type { Command } from './connection.js';

/** The native module's reader, when it has one. */
interface ReaderOps {
  nbdReaderStart(fd: number, timeoutMs: number, done: (slot: number, kind: number, code: number, message: string) => void): object;
  nbdReaderRead(reader: object, offset: number, into: Uint8Array): number;
  nbdReaderStop(reader: object, disconnect: boolean): void;
}

const ops = native as Partial<ReaderOps> | undefined;

/** Reads the native reader takes at once (its slots). */
const MAX_SLOTS = 64;
/** The largest read it takes. */
const MAX_READ = 32 * 1024 * 1024;

/** The socket's file descriptor when the native reader can take it over (unix and TCP sockets on Linux). */
export function nativeReadable(socket: Socket): number | undefined {
  if (!ops?.nbdReaderStart || process.env['VDISK_NO_NATIVE_NBD'] !== undefined) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

interface Pending {
  readonly offset: number;
  readonly length: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** The NbdConnection shape for reads only (see store.ts); other commands go to a JavaScript connection. */
export class NativeReadConnection {
  readonly info: ExportInfo;
  readonly #name: string;
  readonly #reader: object;
  readonly #maxInFlight: number;
  readonly #pending = new Map<number, Pending>();
  readonly #waiters: (() => void)[] = [];
  readonly #timeoutMs: number;
  #dead: VdiskError | undefined;

  /** Takes over `fd` (a duplicate: the caller closes `socket` after this returns). */
  constructor(fd: number, info: ExportInfo, name: string, maxInFlight: number, timeoutMs: number) {
    this.info = info;
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#maxInFlight = Math.max(1, Math.min(maxInFlight, MAX_SLOTS));
    this.#reader = (ops as ReaderOps).nbdReaderStart(fd, timeoutMs, (slot, kind, code, message) => this.#done(slot, kind, code, message));
  }

  /** Why the connection is unusable, once it is. */
  get failure(): VdiskError | undefined {
    return this.#dead;
  }

  /** Only NBD_CMD_READ of at most 32 MiB. */
  async send(cmd: Command): Promise<undefined> {
    if (cmd.type !== C.CMD_READ || !cmd.into || cmd.length > MAX_READ || cmd.length !== cmd.into.length) throw new Error('NativeReadConnection: reads only');
    while (this.#pending.size >= this.#maxInFlight && !this.#dead) await new Promise<void>((r) => this.#waiters.push(r));
    if (this.#dead) throw this.#dead;
    if (cmd.length === 0) return undefined;
    let slot: number;
    try {
      slot = (ops as ReaderOps).nbdReaderRead(this.#reader, cmd.offset, cmd.into);
    } catch (err) {
      // A request may be half sent: the stream cannot be trusted any more.
      const e = socketError(err, this.#name);
      this.kill(e);
      throw e;
    }
    await new Promise<void>((resolve, reject) => this.#pending.set(slot, { offset: cmd.offset, length: cmd.length, resolve, reject }));
    return undefined;
  }

  /** NBD_CMD_DISC, then the socket goes; reads in flight fail. */
  async disconnect(): Promise<void> {
    if (this.#dead) return;
    (ops as ReaderOps).nbdReaderStop(this.#reader, true);
    this.#fail(codec.protocolError('connection closed'));
  }

  /** Tears the connection down: reads in flight fail with `err`. */
  kill(err: VdiskError | undefined): void {
    (ops as ReaderOps).nbdReaderStop(this.#reader, false);
    this.#fail(err ?? codec.protocolError('connection closed'));
  }

  #done(slot: number, kind: number, code: number, message: string): void {
    if (kind === 0) {
      const p = this.#pending.get(slot);
      if (!p) return;
      this.#pending.delete(slot);
      this.#waiters.shift()?.();
      if (code === 0) p.resolve();
      else p.reject(serverError(code, this.#name, p.offset));
      return;
    }
    const err =
      kind === 1
        ? named(codec.protocolError(message), this.#name)
        : kind === 2
          ? new IoError(`Connection to '${this.#name}' closed by the server`, { file: this.#name, errno: 5 })
          : kind === 3
            ? new IoError(`Connection to '${this.#name}' timed out: no answer from the server in ${this.#timeoutMs} ms`, { file: this.#name, errno: 110 })
            : socketError(Object.assign(new Error(`recv: errno ${code}`), { code: getSystemErrorName(-code) }), this.#name);
    this.kill(err);
  }

  #fail(err: VdiskError): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
    for (const w of this.#waiters.splice(0)) w();
  }
}
