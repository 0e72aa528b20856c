/**
 * The fixed newstyle handshake: structured replies, the `base:allocation`
 * meta context, then NBD_OPT_GO for the export (NBD_OPT_EXPORT_NAME for
 * servers without it). Sequential by nature; every reply is bounded.
 */
import { IoError, NotFoundError, PermissionError, UnsupportedError, type VdiskError } from '../../core/errors.js';
import * as codec from './codec.js';
import * as C from './constants.js';
import { readBytes, type Wire } from './wire.js';

/** What the handshake settled about the export. */
export interface ExportInfo {
  /** Size in bytes. */
  readonly size: number;
  /** Transmission flags. */
  readonly flags: number;
  /** Smallest request granularity the server accepts. */
  readonly minBlock: number;
  /** Largest request payload the server accepts. */
  readonly maxBlock: number;
  /** Structured replies were negotiated. */
  readonly structured: boolean;
  /** The id of `base:allocation`, when the server has it. */
  readonly allocationContext: number | undefined;
}

/** Replies one option may get before the server is deemed to loop. */
const MAX_REPLIES = 1024;
/** Default request payload ceiling when the server names none (the protocol's 32 MiB). */
const DEFAULT_MAX_BLOCK = 32 * 1024 * 1024;

/** Options as qemu names them in messages (`option 7 (go)`). */
const OPTION_NAMES: Record<number, string> = {
  [C.OPT_EXPORT_NAME]: 'export name',
  [C.OPT_STARTTLS]: 'starttls',
  [C.OPT_GO]: 'go',
  [C.OPT_STRUCTURED_REPLY]: 'structured reply',
  [C.OPT_SET_META_CONTEXT]: 'set meta context',
};

/** An option error reply in qemu's words, the server's message as the hint. */
function optionError(type: number, option: number, text: string, name: string): VdiskError {
  const opt = `option ${option} (${OPTION_NAMES[option] ?? 'unknown'})`;
  const details = { file: name, ...(text ? { hint: `server reported: ${text}` } : {}), data: { nbdReply: type } };
  switch (type) {
    case C.REP_ERR_UNKNOWN:
      return new NotFoundError('Requested export not available', details);
    case C.REP_ERR_POLICY:
      return new IoError(`Denied by server for ${opt}`, details);
    case C.REP_ERR_INVALID:
      return new IoError(`Invalid parameters for ${opt}`, details);
    case C.REP_ERR_PLATFORM:
      return new UnsupportedError(`Server lacks support for ${opt}`, details);
    case C.REP_ERR_TLS_REQD:
      // qemu's hint names its tls-creds option; vdisk's TLS is asked for by the URI, as libnbd's is.
      return new UnsupportedError(`TLS negotiation required before ${opt}`, {
        ...details,
        hint: ['Did you forget an nbds:// URI (with tls-psk-file or tls-certificates)?', ...(details.hint ? [details.hint] : [])].join('\n'),
      });
    case C.REP_ERR_SHUTDOWN:
      return new IoError(`Server shutting down before ${opt}`, details);
    case C.REP_ERR_BLOCK_SIZE_REQD:
      return new UnsupportedError(`Server requires INFO_BLOCK_SIZE for ${opt}`, details);
    case C.REP_ERR_TOO_BIG:
      return new IoError(`Request too big for ${opt}`, details);
    default:
      return new IoError(`Unknown error code when asking for ${opt}`, details);
  }
}

/** One option reply: header and payload. */
async function reply(wire: Wire, option: number): Promise<{ type: number; data: Uint8Array }> {
  const header = codec.parseOptionReplyHeader(await readBytes(wire, codec.OPTION_REPLY_HEADER), option);
  return { type: header.type, data: await readBytes(wire, header.length) };
}

/**
 * Sends an option and collects its replies up to the final one; `each` sees
 * the non-final ones. Unsupported comes back as a reply type; so does any
 * error when not `strict` (qemu asks for structured replies that way, so a
 * server insisting on TLS is reported at NBD_OPT_GO).
 */
async function haggle(wire: Wire, option: number, data: Uint8Array, name: string, each: (type: number, data: Uint8Array) => void, strict = true): Promise<number> {
  await wire.write(codec.encodeOption(option, data));
  for (let i = 0; i < MAX_REPLIES; i++) {
    const r = await reply(wire, option);
    if (r.type === C.REP_ACK) return r.type;
    if (r.type & C.REP_FLAG_ERROR) {
      if (r.type === C.REP_ERR_UNSUP || !strict) return r.type;
      throw optionError(r.type, option, codec.replyText(r.data), name);
    }
    each(r.type, r.data);
  }
  throw codec.protocolError(`more than ${MAX_REPLIES} replies to option ${option}`);
}

/** The export's facts through NBD_OPT_EXPORT_NAME (servers older than NBD_OPT_GO). */
async function exportName(wire: Wire, exportNameText: string, noZeroes: boolean): Promise<codec.ExportFacts> {
  const name = new TextEncoder().encode(exportNameText);
  await wire.write(codec.encodeOption(C.OPT_EXPORT_NAME, name));
  return codec.parseExportNameReply(await readBytes(wire, noZeroes ? 10 : 134));
}

/**
 * Negotiates `exportName` on a fresh connection; with `upgrade`, TLS
 * first (NBD_OPT_STARTTLS, then `upgrade` gives the wire over TLS). With
 * `simple`, neither structured replies nor block status are asked for (a
 * connection for reads only: every reply is a simple reply).
 *
 * @throws {NotFoundError} ENOENT when the server has no such export
 * @throws {IoError} EIO when the server breaks the protocol
 */
export async function negotiate(first: Wire, exportNameText: string, name: string, upgrade?: () => Promise<Wire>, simple = false): Promise<{ info: ExportInfo; wire: Wire }> {
  let wire = first;
  wire.setBusy(true);
  const serverFlags = codec.parseGreeting(await readBytes(wire, 18));
  await wire.write(codec.encodeClientFlags(serverFlags));
  if (upgrade) {
    // qemu's words when the server will not do TLS.
    if ((await haggle(wire, C.OPT_STARTTLS, new Uint8Array(0), name, unexpected)) !== C.REP_ACK) throw new UnsupportedError("Server don't support STARTTLS option", { file: name });
    wire = await upgrade();
    wire.setBusy(true);
  }
  const structured = !simple && (await haggle(wire, C.OPT_STRUCTURED_REPLY, new Uint8Array(0), name, unexpected, false)) === C.REP_ACK;
  let allocationContext: number | undefined;
  if (structured) {
    await haggle(wire, C.OPT_SET_META_CONTEXT, codec.encodeSetMetaContext(exportNameText, [C.BASE_ALLOCATION]), name, (type, data) => {
      if (type !== C.REP_META_CONTEXT) unexpected(type);
      const ctx = codec.parseMetaContext(data);
      if (ctx.name === C.BASE_ALLOCATION) allocationContext = ctx.id;
    });
  }
  const facts: codec.ExportFacts = {};
  const go = await haggle(wire, C.OPT_GO, codec.encodeGo(exportNameText), name, (type, data) => {
    if (type !== C.REP_INFO) unexpected(type);
    codec.parseInfo(data, facts);
  });
  if (go === C.REP_ERR_UNSUP) Object.assign(facts, await exportName(wire, exportNameText, (serverFlags & C.FLAG_NO_ZEROES) !== 0));
  wire.setBusy(false);
  if (facts.size === undefined || facts.flags === undefined) throw codec.protocolError('server did not send the export size');
  const maxBlock = Math.min(facts.maxBlock ?? DEFAULT_MAX_BLOCK, DEFAULT_MAX_BLOCK);
  return { info: { size: facts.size, flags: facts.flags, minBlock: facts.minBlock ?? 1, maxBlock, structured, allocationContext }, wire };
}

function unexpected(type: number): never {
  throw codec.protocolError(`unexpected option reply type ${type}`);
}

/** Used by callers that give up on a connection before transmission: NBD_OPT_ABORT, best effort. */
export async function abortHandshake(wire: Wire): Promise<void> {
  await wire.write(codec.encodeOption(C.OPT_ABORT)).catch(() => undefined);
}

/** The error for an export opened for writing that the server serves read-only. */
export function readOnlyExport(name: string): VdiskError {
  // qemu-img's words when a writable open meets a read-only export.
  return new PermissionError('Could not open image: Permission denied', { file: name, errno: 13, data: { readOnlyExport: true } });
}
