/**
 * A small keep-alive HTTP/1.1 client on plain `net` sockets for the ranged
 * GETs of a bulk read: it parses only the status line and headers, then the
 * socket reads a Content-Length body straight into the caller's buffers
 * (net's `onread`), with no parser or per-chunk copy in between. Chunked and
 * close-delimited bodies (error pages) are decoded from a scratch buffer.
 * node:http stays in use for everything else (HEAD, TLS, S3).
 */
import * as net from 'node:net';
import { classify, TransientError } from './exchange.js';

/** The body's next destination: `at` bytes into the body, or undefined to take it as chunks. */
export type Target = (at: number) => Uint8Array | undefined;
/** Receives body bytes that came through the scratch buffer. */
export type Sink = (chunk: Buffer, at: number) => void;

const SCRATCH_SIZE = 64 * 1024;
/**
 * What a read takes while no body is being read (a head is awaited, or its
 * body not asked for yet): a head's worth, not the start of the body, which
 * would be copied into the early buffers and again into its destination.
 */
const HEAD_READ = 1024;
/** Longest response head accepted. */
const MAX_HEAD = 64 * 1024;
/** A header name (RFC 9110's token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** One response on a {@link RawConnection}: status and headers, then its body read once. */
export class RawResponse {
  readonly statusCode: number;
  /** Header names in lower case; repeated headers joined by `, `. */
  readonly headers: Record<string, string>;
  /** True once the whole body was read. */
  complete = false;
  readonly #conn: RawConnection;

  constructor(conn: RawConnection, statusCode: number, headers: Record<string, string>) {
    this.#conn = conn;
    this.statusCode = statusCode;
    this.headers = headers;
  }

  /** Reads the body (at most `limit` bytes) into `target`'s buffers or `sink`; resolves with its length. */
  readBody(limit: number, sink: Sink, target?: Target): Promise<number> {
    return this.#conn.readBody(limit, sink, target);
  }

  /** Reads and drops the body, keeping the connection. */
  resume(): void {
    this.#conn.readBody(Infinity, () => {}).catch(() => {});
  }

  /** Drops the connection and the body with it. */
  destroy(): void {
    this.#conn.destroy(new TransientError('the body was not read'));
  }
}

type Framing = { kind: 'length'; left: number } | { kind: 'chunked'; state: ChunkState } | { kind: 'close' };
interface ChunkState {
  /** Bytes left of the current chunk's data, or -1 while reading a size line or trailer. */
  left: number;
  line: string;
  /** A CRLF after chunk data is still to come. */
  crlf: number;
  trailer: boolean;
}

interface BodyWait {
  readonly limit: number;
  got: number;
  readonly sink: Sink;
  readonly target: Target | undefined;
  readonly resolve: (n: number) => void;
  readonly reject: (e: Error) => void;
}
interface HeadWait {
  readonly resolve: (r: RawResponse) => void;
  readonly reject: (e: Error) => void;
}

/** One keep-alive connection: one request at a time. */
export class RawConnection {
  readonly #socket: net.Socket;
  readonly #scratch = new Uint8Array(SCRATCH_SIZE);
  readonly #release: (conn: RawConnection) => void;
  #head: Buffer[] = [];
  #headBytes = 0;
  #onHead: HeadWait | undefined;
  #framing: Framing | undefined;
  #early: Buffer[] = [];
  #body: BodyWait | undefined;
  #direct: Uint8Array | undefined;
  #keepAlive = true;
  #failure: Error | undefined;
  #signal: AbortSignal | undefined;
  #detach: (() => void) | undefined;

  constructor(url: URL, timeoutMs: number, release: (conn: RawConnection) => void) {
    this.#release = release;
    this.#socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? 80 : Number(url.port),
      noDelay: true,
      onread: { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Uint8Array) => this.#received(n, buf) },
    });
    this.#socket.setTimeout(timeoutMs, () => this.destroy(new TransientError(`no response for ${timeoutMs} ms`)));
    this.#socket.on('error', (err) => this.destroy(classify(err, this.#signal)));
    this.#socket.on('end', () => this.#ended());
    this.#socket.on('close', () => this.destroy(new TransientError('socket hang up')));
  }

  /** False once the connection failed or was closed. */
  get usable(): boolean {
    return this.#failure === undefined;
  }

  /** Sends a request (no body) and resolves at its response's headers. */
  request(method: string, path: string, headers: Readonly<Record<string, string>>, signal: AbortSignal | undefined): Promise<RawResponse> {
    let text = `${method} ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k + v)) return Promise.reject(new TypeError(`Invalid character in header content ["${k}"]`));
      text += `${k}: ${v}\r\n`;
    }
    this.#signal = signal;
    if (signal) {
      const onAbort = (): void => this.destroy(new TransientError('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.#detach = () => signal.removeEventListener('abort', onAbort);
      if (signal.aborted) onAbort();
    }
    this.#socket.ref();
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#onHead = { resolve, reject };
      this.#socket.write(`${text}\r\n`, 'latin1');
    });
  }

  /** Ends the connection; whatever waits on it fails with `err`. */
  destroy(err: Error): void {
    if (this.#failure) return;
    this.#failure = classify(err, this.#signal);
    this.#socket.destroy();
    this.#onHead?.reject(this.#failure);
    this.#body?.reject(this.#failure);
    this.#onHead = this.#body = undefined;
    this.#detach?.();
  }

  readBody(limit: number, sink: Sink, target?: Target): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#body = { limit, got: 0, sink, target, resolve, reject };
      const early = this.#early;
      this.#early = [];
      for (const b of early) if (this.#body) this.#bodyBytes(b);
      if (this.#body && this.#framing?.kind === 'length' && this.#framing.left === 0) this.#finish();
      this.#socket.resume();
    });
  }

  /** A Content-Length body owed to a target reads straight into it; anything else into the scratch buffer. */
  #nextBuffer(): Uint8Array {
    const b = this.#body;
    const f = this.#framing;
    this.#direct = undefined;
    if (b?.target && f?.kind === 'length' && f.left > 0 && b.got + f.left <= b.limit) {
      const into = b.target(b.got);
      if (into !== undefined && into.length > 0) this.#direct = into.length > f.left ? into.subarray(0, f.left) : into;
    }
    // net picks the next buffer as a read ends: a body's last read picks the one the next response's
    // head comes into, the head's the one its body starts in (before the caller asks for the body).
    return this.#direct ?? (b === undefined ? this.#scratch.subarray(0, HEAD_READ) : this.#scratch);
  }

  #received(n: number, buf: Uint8Array): boolean {
    if (buf === this.#direct) {
      const b = this.#body as BodyWait;
      b.got += n;
      (this.#framing as { left: number }).left -= n;
      if ((this.#framing as { left: number }).left === 0) this.#finish();
      return true;
    }
    const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
    if (this.#onHead) this.#headPart(chunk);
    else if (this.#body) this.#bodyBytes(chunk);
    else if (this.#framing) this.#early.push(Buffer.from(chunk));
    else this.destroy(new TransientError('the server sent data nobody asked for'));
    return true;
  }

  /** Collects the response head until its blank line, then parses it. */
  #headPart(chunk: Buffer): void {
    this.#head.push(Buffer.from(chunk));
    this.#headBytes += chunk.length;
    const all = this.#head.length === 1 ? (this.#head[0] as Buffer) : Buffer.concat(this.#head);
    const end = all.indexOf('\r\n\r\n', Math.max(0, this.#headBytes - chunk.length - 3));
    if (end < 0) {
      this.#head = [all];
      if (this.#headBytes > MAX_HEAD) this.destroy(new TransientError('response headers too long'));
      return;
    }
    this.#head = [];
    this.#headBytes = 0;
    const res = this.#parseHead(all.toString('latin1', 0, end));
    if (res === undefined) return;
    const waiter = this.#onHead as HeadWait;
    this.#onHead = undefined;
    this.#socket.pause();
    const rest = all.subarray(end + 4);
    if (rest.length > 0) this.#early.push(Buffer.from(rest));
    waiter.resolve(res);
  }

  #parseHead(text: string): RawResponse | undefined {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!m) {
      this.destroy(new TransientError(`bad response line '${(lines[0] ?? '').slice(0, 80)}'`));
      return undefined;
    }
    const headers: Record<string, string> = {};
    // As strict as Node's own parser (llhttp): a line that is no `name: value` (obs-fold included) or a
    // Content-Length that is not one number leaves the body's end unknown, so the response is refused
    // rather than read to the connection's close.
    const bad = (what: string, line: string): undefined => void this.destroy(new TransientError(`${what} '${line.slice(0, 80)}'`));
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return bad('bad header line', line);
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const status = Number(m[2]);
    const connection = (headers['connection'] ?? '').toLowerCase();
    this.#keepAlive = m[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    // One number: repeated headers (joined above) and lists are refused, as llhttp refuses them.
    const length = headers['content-length'];
    if (length !== undefined && !/^\d{1,15}$/.test(length)) return bad('bad Content-Length', length);
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) this.#framing = { kind: 'length', left: 0 };
    else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) this.#framing = { kind: 'chunked', state: { left: -1, line: '', crlf: 0, trailer: false } };
    else if (length !== undefined) this.#framing = { kind: 'length', left: Number(length) };
    else {
      this.#framing = { kind: 'close' };
      this.#keepAlive = false;
    }
    return new RawResponse(this, status, headers);
  }

  /** Body bytes that came through the scratch buffer (or before the body was asked for). */
  #bodyBytes(chunk: Buffer): void {
    const f = this.#framing;
    if (f?.kind === 'length') {
      const take = Math.min(chunk.length, f.left);
      this.#give(chunk.subarray(0, take));
      f.left -= take;
      if (take < chunk.length) this.#keepAlive = false;
      if (f.left === 0) this.#finish();
    } else if (f?.kind === 'chunked') this.#dechunk(f.state, chunk);
    else this.#give(chunk);
  }

  #dechunk(s: ChunkState, chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.#body) {
      if (s.left > 0) {
        const take = Math.min(s.left, chunk.length - i);
        this.#give(chunk.subarray(i, i + take));
        s.left -= take;
        i += take;
        if (s.left === 0) s.crlf = 2;
      } else if (s.crlf > 0) {
        s.crlf--;
        i++;
      } else {
        const nl = chunk.indexOf(10, i);
        s.line += chunk.toString('latin1', i, nl < 0 ? chunk.length : nl);
        if (nl < 0) return;
        i = nl + 1;
        const line = s.line.trim();
        s.line = '';
        if (s.trailer) {
          if (line === '') return this.#finish();
          continue;
        }
        // A size in hex, optionally followed by chunk extensions (`;name=value`), and nothing else.
        const size = /^[0-9a-f]{1,12}[ \t]*(;.*)?$/i.test(line) ? parseInt(line, 16) : NaN;
        if (Number.isNaN(size)) return this.destroy(new TransientError(`bad chunk size '${line.slice(0, 20)}'`));
        if (size === 0) s.trailer = true;
        else s.left = size;
      }
    }
  }

  /** Copies body bytes to the sink, or refuses a body longer than the caller allows. */
  #give(bytes: Buffer): void {
    const b = this.#body;
    if (!b || bytes.length === 0) return;
    if (b.got + bytes.length > b.limit) return this.destroy(new TransientError(`the body is longer than the ${b.limit} bytes announced`));
    const into = b.target?.(b.got);
    if (into !== undefined && into.length >= bytes.length) into.set(bytes);
    else b.sink(bytes, b.got);
    b.got += bytes.length;
  }

  /** The server closed its side: the end of a close-delimited body, else a failure. */
  #ended(): void {
    if (this.#body && this.#framing?.kind === 'close') {
      this.#keepAlive = false;
      this.#finish();
    } else this.destroy(new TransientError(this.#body ? `the connection closed after ${this.#body.got} bytes of the body` : 'socket hang up'));
  }

  #finish(): void {
    const b = this.#body;
    if (!b) return;
    this.#body = undefined;
    this.#framing = undefined;
    this.#detach?.();
    this.#detach = undefined;
    if (this.#keepAlive && this.#early.length === 0) {
      // An idle connection does not keep the process alive (as node:http's agent does it).
      this.#socket.unref();
      this.#release(this);
    }
    else this.destroy(new TransientError('connection closed'));
    b.resolve(b.got);
  }
}

/** Keep-alive connections to one origin; closing it ends them all, busy ones too. */
export class RawPool {
  readonly #url: URL;
  readonly #timeoutMs: number;
  #idle: RawConnection[] = [];
  readonly #all = new Set<RawConnection>();
  #closed = false;

  constructor(url: URL, timeoutMs: number) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
  }

  /** Sends a GET (or another bodiless request) on an idle connection or a new one. */
  request(method: string, path: string, headers: Readonly<Record<string, string>>, signal: AbortSignal | undefined): Promise<RawResponse> {
    if (this.#closed) return Promise.reject(new Error('the HTTP store is closed'));
    let conn = this.#idle.pop();
    while (conn && !conn.usable) conn = this.#idle.pop();
    if (!conn) {
      conn = new RawConnection(this.#url, this.#timeoutMs, (c) => this.#idle.push(c));
      this.#all.add(conn);
    }
    for (const c of this.#all) if (!c.usable) this.#all.delete(c);
    return conn.request(method, path, { host: this.#url.host, ...headers }, signal);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.destroy(new Error('the HTTP store is closed'));
    this.#all.clear();
    this.#idle = [];
  }
}
