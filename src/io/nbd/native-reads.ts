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

import type { VdiskError } from '../../core/errors.js';
import { Limiter } from '../http/limiter.js';
import { native } from '../native.js';
import * as codec from './codec.js';
import * as C from './constants.js';
import { closedByServer, named, noAnswer, serverError, socketError } from './errors.js';
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
  resolve(): void;
  reject(err: unknown): void;
}

/** The NbdConnection shape for reads only (see store.ts); other commands go to a JavaScript connection. */
export class NativeReadConnection {
  readonly info: ExportInfo;
  readonly #name: string;
  readonly #reader: object;
  /** Reads in flight, at most the reader's slots. */
  readonly #limit: Limiter;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #dead: VdiskError | undefined;

  /** Takes over `fd` (a duplicate: the caller closes `socket` after this returns). */
  constructor(fd: number, info: ExportInfo, name: string, maxInFlight: number, timeoutMs: number) {
    this.info = info;
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#limit = new Limiter(Math.min(maxInFlight, MAX_SLOTS));
    this.#reader = (ops as ReaderOps).nbdReaderStart(fd, timeoutMs, (slot, kind, code, message) => this.#done(slot, kind, code, message));
  }

  /** Why the connection is unusable, once it is. */
  get failure(): VdiskError | undefined {
    return this.#dead;
  }

  /** Only NBD_CMD_READ of at most 32 MiB. */
  async send(cmd: Command): Promise<undefined> {
    const into = cmd.into;
    if (cmd.type !== C.CMD_READ || !into || cmd.length > MAX_READ || cmd.length !== into.length) throw new Error('NativeReadConnection: reads only');
    return this.#limit.run(async () => {
      if (this.#dead) throw this.#dead;
      if (cmd.length === 0) return undefined;
      let slot: number;
      try {
        slot = (ops as ReaderOps).nbdReaderRead(this.#reader, cmd.offset, into);
      } catch (err) {
        // A request may be half sent: the stream cannot be trusted any more.
        const e = socketError(err, this.#name);
        this.kill(e);
        throw e;
      }
      await new Promise<void>((resolve, reject) => this.#pending.set(slot, { offset: cmd.offset, resolve, reject }));
      return undefined;
    });
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
      if (code === 0) p.resolve();
      else p.reject(serverError(code, this.#name, p.offset));
      return;
    }
    const err =
      kind === 1
        ? named(codec.protocolError(message), this.#name)
        : kind === 2
          ? closedByServer(this.#name)
          : kind === 3
            ? noAnswer(this.#name, this.#timeoutMs)
            : socketError(Object.assign(new Error(`recv: errno ${code}`), { code: getSystemErrorName(-code) }), this.#name);
    this.kill(err);
  }

  #fail(err: VdiskError): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
  }
}
