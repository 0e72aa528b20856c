/**
 * The NBD wire format as pure functions over byte buffers: what the client
 * sends, and checks of what the server sends. No sockets here, so a fuzz
 * test can feed hostile bytes straight in. Every length a server sends is
 * bounded before anything is allocated for it.
 */
import { IoError } from '../../core/errors.js';
import * as C from './constants.js';

/** Longest option reply accepted (strings are at most 4096 bytes; infos are tiny). */
export const MAX_OPTION_REPLY = 64 * 1024;
/** Longest non-data structured chunk accepted (block status descriptors, error messages). */
export const MAX_CHUNK = 1024 * 1024;
/** Bytes of an option reply header. */
export const OPTION_REPLY_HEADER = 20;
/** Bytes of a request header. */
export const REQUEST_HEADER = 28;
/** Bytes of a simple reply header after its magic. */
export const SIMPLE_REST = 12;
/** Bytes of a structured chunk header after its magic. */
export const STRUCTURED_REST = 16;

/** A server that broke the protocol: the connection is unusable. */
export function protocolError(message: string): IoError {
  return new IoError(`NBD protocol error: ${message}`, { errno: 5, data: { protocol: true } });
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function need(b: Uint8Array, n: number, what: string): DataView {
  if (b.length < n) throw protocolError(`${what} too short (${b.length} bytes, need ${n})`);
  return view(b);
}

/** The 18-byte greeting: returns the handshake flags; refuses oldstyle and garbage. */
export function parseGreeting(b: Uint8Array): number {
  const v = need(b, 18, 'greeting');
  const magic = v.getBigUint64(0);
  if (magic !== C.NBD_MAGIC) throw protocolError(`Bad initial magic received: 0x${magic.toString(16)}`);
  const second = v.getBigUint64(8);
  if (second === C.OLDSTYLE_MAGIC) throw protocolError('server uses oldstyle negotiation, which has no export names');
  if (second !== C.OPTS_MAGIC) throw protocolError(`Bad server magic received: 0x${second.toString(16)}`);
  const flags = v.getUint16(16);
  if ((flags & C.FLAG_FIXED_NEWSTYLE) === 0) throw protocolError('server does not support fixed newstyle negotiation');
  return flags;
}

/** The client's 4-byte flags answer to the greeting. */
export function encodeClientFlags(serverFlags: number): Uint8Array {
  const out = new Uint8Array(4);
  view(out).setUint32(0, C.FLAG_C_FIXED_NEWSTYLE | (serverFlags & C.FLAG_NO_ZEROES ? C.FLAG_C_NO_ZEROES : 0));
  return out;
}

/** An option request with its data. */
export function encodeOption(option: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const v = view(out);
  v.setBigUint64(0, C.OPTS_MAGIC);
  v.setUint32(8, option);
  v.setUint32(12, data.length);
  out.set(data, 16);
  return out;
}

function encodeString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length > 4096) throw new IoError(`NBD name too long (${bytes.length} bytes, at most 4096): '${s}'`);
  return bytes;
}

/** NBD_OPT_GO's data: the export name and the information vdisk wants (size and flags, block sizes). */
export function encodeGo(exportName: string): Uint8Array {
  const name = encodeString(exportName);
  const out = new Uint8Array(4 + name.length + 2 + 2);
  const v = view(out);
  v.setUint32(0, name.length);
  out.set(name, 4);
  v.setUint16(4 + name.length, 1);
  v.setUint16(6 + name.length, C.INFO_BLOCK_SIZE);
  return out;
}

/** NBD_OPT_SET_META_CONTEXT's data: the export name and the contexts asked for. */
export function encodeSetMetaContext(exportName: string, queries: readonly string[]): Uint8Array {
  const name = encodeString(exportName);
  const qs = queries.map(encodeString);
  const out = new Uint8Array(8 + name.length + qs.reduce((n, q) => n + 4 + q.length, 0));
  const v = view(out);
  v.setUint32(0, name.length);
  out.set(name, 4);
  let pos = 4 + name.length;
  v.setUint32(pos, qs.length);
  pos += 4;
  for (const q of qs) {
    v.setUint32(pos, q.length);
    out.set(q, pos + 4);
    pos += 4 + q.length;
  }
  return out;
}

/** An option reply header. */
export interface OptionReplyHeader {
  readonly option: number;
  readonly type: number;
  readonly length: number;
}

/** Checks an option reply header: magic, that it answers `option`, and a bounded length. */
export function parseOptionReplyHeader(b: Uint8Array, option: number): OptionReplyHeader {
  const v = need(b, OPTION_REPLY_HEADER, 'option reply');
  const magic = v.getBigUint64(0);
  if (magic !== C.REP_MAGIC) throw protocolError(`Unexpected option reply magic 0x${magic.toString(16)}`);
  const got = v.getUint32(8);
  if (got !== option) throw protocolError(`Unexpected option in reply: ${got} (sent ${option})`);
  const length = v.getUint32(16);
  if (length > MAX_OPTION_REPLY) throw protocolError(`option reply of ${length} bytes (at most ${MAX_OPTION_REPLY})`);
  return { option: got, type: v.getUint32(12), length };
}

/** What NBD_OPT_GO's NBD_REP_INFO replies told. */
export interface ExportFacts {
  size?: number;
  flags?: number;
  minBlock?: number;
  preferredBlock?: number;
  maxBlock?: number;
}

/** Folds one NBD_REP_INFO payload into `facts`; unknown items are ignored, as the protocol says. */
export function parseInfo(b: Uint8Array, facts: ExportFacts): void {
  const v = need(b, 2, 'NBD_REP_INFO');
  const type = v.getUint16(0);
  if (type === C.INFO_EXPORT) {
    if (b.length !== 12) throw protocolError(`NBD_INFO_EXPORT of ${b.length} bytes (expected 12)`);
    facts.size = safeSize(v.getBigUint64(2));
    facts.flags = v.getUint16(10);
  } else if (type === C.INFO_BLOCK_SIZE) {
    if (b.length !== 14) throw protocolError(`NBD_INFO_BLOCK_SIZE of ${b.length} bytes (expected 14)`);
    const min = v.getUint32(2);
    const preferred = v.getUint32(6);
    const max = v.getUint32(10);
    const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
    if (!pow2(min) || min > 65536 || !pow2(preferred) || preferred < min || max < min || (max !== 0xffffffff && max % min !== 0)) {
      throw protocolError(`invalid block sizes: minimum ${min}, preferred ${preferred}, maximum ${max}`);
    }
    Object.assign(facts, { minBlock: min, preferredBlock: preferred, maxBlock: max });
  }
}

/** The reply to NBD_OPT_EXPORT_NAME (servers without NBD_OPT_GO): size and flags. */
export function parseExportNameReply(b: Uint8Array): ExportFacts {
  const v = need(b, 10, 'export reply');
  return { size: safeSize(v.getBigUint64(0)), flags: v.getUint16(8) };
}

/** A 64-bit size as a number, refused beyond 2^53 - 1 (8 PiB). */
export function safeSize(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`export size ${n} exceeds the supported maximum of ${Number.MAX_SAFE_INTEGER} bytes`);
  return Number(n);
}

/** NBD_REP_META_CONTEXT: the context's id and name. */
export function parseMetaContext(b: Uint8Array): { id: number; name: string } {
  const v = need(b, 4, 'NBD_REP_META_CONTEXT');
  return { id: v.getUint32(0), name: new TextDecoder().decode(b.subarray(4)) };
}

/** An option error reply's message (the server's words, when it gave any). */
export function replyText(b: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 4096)).replace(/[\x00-\x1f]/g, ' ');
}

/** A request header. */
export interface Request {
  readonly type: number;
  readonly flags: number;
  readonly handle: number;
  readonly offset: number;
  readonly length: number;
}

/** The 28-byte request header (the handle is a 32-bit counter in the low half). */
export function encodeRequest(r: Request): Uint8Array {
  const out = new Uint8Array(REQUEST_HEADER);
  const v = view(out);
  v.setUint32(0, C.REQUEST_MAGIC);
  v.setUint16(4, r.flags);
  v.setUint16(6, r.type);
  v.setUint32(8, 0);
  v.setUint32(12, r.handle);
  v.setBigUint64(16, BigInt(r.offset));
  v.setUint32(24, r.length);
  return out;
}

/** The handle of a reply: vdisk's are below 2^32, anything else is unknown (-1). */
function readHandle(v: DataView, at: number): number {
  return v.getUint32(at) === 0 ? v.getUint32(at + 4) : -1;
}

/** A simple reply after its magic: error and handle. */
export function parseSimpleReply(b: Uint8Array): { error: number; handle: number } {
  const v = need(b, SIMPLE_REST, 'simple reply');
  return { error: v.getUint32(0), handle: readHandle(v, 4) };
}

/** A structured chunk header after its magic. */
export interface ChunkHeader {
  readonly flags: number;
  readonly type: number;
  readonly handle: number;
  readonly length: number;
}

/** A structured chunk header after its magic. */
export function parseChunkHeader(b: Uint8Array): ChunkHeader {
  const v = need(b, STRUCTURED_REST, 'structured reply');
  return { flags: v.getUint16(0), type: v.getUint16(2), handle: readHandle(v, 4), length: v.getUint32(12) };
}

/** An error chunk's payload: errno (NBD's numbering) and message. */
export function parseErrorChunk(b: Uint8Array, type: number): { error: number; message: string } {
  const v = need(b, 6, 'error chunk');
  const error = v.getUint32(0);
  const len = v.getUint16(4);
  const extra = type === C.REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
  if (6 + len + extra > b.length) throw protocolError(`error chunk message of ${len} bytes overruns its ${b.length}-byte chunk`);
  if (error === 0) throw protocolError('error chunk with error 0');
  return { error, message: replyText(b.subarray(6, 6 + len)) };
}

/** One `base:allocation` descriptor. */
export interface StatusDescriptor {
  readonly length: number;
  readonly flags: number;
}

/**
 * A block status chunk: its context id and descriptors, checked to be
 * non-empty. A last descriptor running past `limit` bytes is cut there (the
 * protocol lets servers overshoot in the final one, as nbdkit does); any
 * descriptor after it is a protocol error.
 */
export function parseBlockStatus(b: Uint8Array, limit: number): { id: number; descriptors: StatusDescriptor[] } {
  const v = need(b, 12, 'block status chunk');
  if ((b.length - 4) % 8 !== 0) throw protocolError(`block status chunk of ${b.length} bytes is not 4 + 8n`);
  const descriptors: StatusDescriptor[] = [];
  let total = 0;
  for (let pos = 4; pos < b.length; pos += 8) {
    const length = v.getUint32(pos);
    if (length === 0) throw protocolError('block status descriptor of length 0');
    if (total >= limit) throw protocolError(`block status describes more than the ${limit} bytes asked for`);
    const kept = Math.min(length, limit - total);
    total += kept;
    descriptors.push({ length: kept, flags: v.getUint32(pos + 4) });
  }
  return { id: v.getUint32(0), descriptors };
}

/** A chunk's 8-byte offset (OFFSET_DATA, OFFSET_HOLE), checked to lie in the request. */
export function chunkOffset(b: Uint8Array, length: number, request: { offset: number; length: number }): number {
  const v = need(b, 8, 'offset chunk');
  const offset = v.getBigUint64(0);
  const start = BigInt(request.offset);
  if (offset < start || offset + BigInt(length) > start + BigInt(request.length) || length === 0) {
    throw protocolError(`chunk [${offset}, +${length}) outside the request [${request.offset}, +${request.length})`);
  }
  return Number(offset);
}
