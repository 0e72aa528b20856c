/**
 * A small HTTP server that serves one object with byte ranges and If-Range
 * as a real server does, and injects the faults the HTTP store must survive
 * or report: HEAD refused, resets and short bodies mid-body, 503 with
 * Retry-After, the object replaced mid-read, no range support.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** Faults to inject; counters count down as they fire. */
export interface Faults {
  /** Answer HEAD with this status (405: HEAD refused). */
  headStatus?: number;
  /** Ranged GETs to cut off mid-body with a TCP reset. */
  resets?: number;
  /** Ranged GETs to end cleanly halfway through the announced body. */
  shortBodies?: number;
  /** Ranged GETs that send half their body and then nothing (the client must time out). */
  stalls?: number;
  /** Ranged GETs to answer 503 with `Retry-After: 1`. */
  busy?: number;
  /** Replace the object after this many ranged GETs. */
  changeAfter?: number;
  /** Ignore Range (always 200 with the whole object). */
  noRanges?: boolean;
  /** Answer every request with this status. */
  status?: number;
  /** Refuse requests without this Authorization header (401). */
  authorization?: string;
}

/** One request the server saw. */
export interface Seen {
  readonly method: string;
  readonly range: string | undefined;
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
}

/** The running server. */
export interface FaultServer {
  readonly url: string;
  readonly faults: Faults;
  readonly seen: Seen[];
  /** Body bytes sent so far. */
  bodyBytes: number;
  close(): Promise<void>;
}

function etagOf(data: Uint8Array): string {
  return `"${createHash('sha1').update(data).digest('hex').slice(0, 16)}"`;
}

/** Starts a server on 127.0.0.1 (port 0) serving `data` at `/disk.img`. */
export async function startFaultServer(data: Uint8Array, faults: Faults = {}): Promise<FaultServer> {
  let body = Buffer.from(data);
  let etag = etagOf(body);
  let ranged = 0;
  const state: FaultServer = { url: '', faults, seen: [], bodyBytes: 0, close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    const seen = (status: number): void => {
      state.seen.push({ method: req.method ?? '', range: req.headers.range, status, headers: req.headers });
    };
    const finish = (status: number, headers: Record<string, string | number>, payload?: Buffer): void => {
      seen(status);
      res.writeHead(status, { etag, 'accept-ranges': 'bytes', ...headers });
      if (payload && req.method !== 'HEAD') state.bodyBytes += payload.length;
      res.end(req.method === 'HEAD' ? undefined : payload);
    };
    if (faults.status !== undefined) return finish(faults.status, { 'content-length': 0 });
    if (faults.authorization !== undefined && req.headers.authorization !== faults.authorization) return finish(401, { 'content-length': 0 });
    if (req.method === 'HEAD') {
      if (faults.headStatus !== undefined) return finish(faults.headStatus, { 'content-length': 0 });
      return finish(200, { 'content-length': body.length });
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || faults.noRanges) return finish(200, { 'content-length': body.length }, body);
    ranged++;
    if (faults.changeAfter !== undefined && ranged > faults.changeAfter) {
      delete faults.changeAfter;
      body = Buffer.from(body.map((b) => b ^ 0xff));
      etag = etagOf(body);
    }
    const ifRange = req.headers['if-range'];
    if (ifRange !== undefined && ifRange !== etag) return finish(200, { 'content-length': body.length }, body);
    if ((faults.busy ?? 0) > 0) {
      faults.busy = (faults.busy ?? 0) - 1;
      return finish(503, { 'retry-after': 1, 'content-length': 0 });
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    if (start >= body.length) return finish(416, { 'content-range': `bytes */${body.length}`, 'content-length': 0 });
    const part = body.subarray(start, end + 1);
    const headers = { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': part.length };
    if ((faults.resets ?? 0) > 0 || (faults.shortBodies ?? 0) > 0 || (faults.stalls ?? 0) > 0) return cutOff(req, res, headers, part, seen);
    finish(206, headers, part);
  });
  const cutOff = (_req: IncomingMessage, res: ServerResponse, headers: Record<string, string | number>, part: Buffer, seen: (s: number) => void): void => {
    seen(206);
    const reset = (faults.resets ?? 0) > 0;
    const stall = !reset && (faults.stalls ?? 0) > 0;
    if (reset) faults.resets = (faults.resets ?? 0) - 1;
    else if (stall) faults.stalls = (faults.stalls ?? 0) - 1;
    else faults.shortBodies = (faults.shortBodies ?? 0) - 1;
    res.writeHead(206, { etag, ...headers });
    const half = part.subarray(0, part.length >> 1);
    state.bodyBytes += half.length;
    res.write(half, () => {
      if (reset) res.socket?.resetAndDestroy();
      else if (!stall) res.socket?.end();
    });
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/disk.img`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
