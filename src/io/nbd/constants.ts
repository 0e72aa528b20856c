/**
 * NBD protocol numbers (the NBD project's doc/proto.md): magics, option
 * and reply codes, flags. Values only; the codec gives them meaning.
 */

/** `NBDMAGIC`: the first 8 bytes a server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** `IHAVEOPT`: newstyle greeting and every option the client sends. */
export const OPTS_MAGIC = 0x49484156454f5054n;
/** Oldstyle negotiation's second magic (no named exports: refused). */
export const OLDSTYLE_MAGIC = 0x00420281861253n;
/** Every option reply starts with this. */
export const REP_MAGIC = 0x3e889045565a9n;
/** Request header magic. */
export const REQUEST_MAGIC = 0x25609513;
/** Simple reply magic. */
export const SIMPLE_REPLY_MAGIC = 0x67446698;
/** Structured reply chunk magic. */
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server). */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
/** Client flags. */
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

/** Options. */
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_STARTTLS = 5;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_SET_META_CONTEXT = 10;

/** Option reply types; bit 31 marks errors. */
export const REP_ACK = 1;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
export const REP_FLAG_ERROR = 0x80000000;
export const REP_ERR_UNSUP = REP_FLAG_ERROR + 1;
export const REP_ERR_POLICY = REP_FLAG_ERROR + 2;
export const REP_ERR_INVALID = REP_FLAG_ERROR + 3;
export const REP_ERR_PLATFORM = REP_FLAG_ERROR + 4;
export const REP_ERR_TLS_REQD = REP_FLAG_ERROR + 5;
export const REP_ERR_UNKNOWN = REP_FLAG_ERROR + 6;
export const REP_ERR_SHUTDOWN = REP_FLAG_ERROR + 7;
export const REP_ERR_BLOCK_SIZE_REQD = REP_FLAG_ERROR + 8;
export const REP_ERR_TOO_BIG = REP_FLAG_ERROR + 9;

/** NBD_OPT_GO information items. */
export const INFO_EXPORT = 0;
export const INFO_BLOCK_SIZE = 3;

/** Transmission flags. */
export const FLAG_HAS_FLAGS = 1 << 0;
export const FLAG_READ_ONLY = 1 << 1;
export const FLAG_SEND_FLUSH = 1 << 2;
export const FLAG_SEND_FUA = 1 << 3;
export const FLAG_SEND_TRIM = 1 << 5;
export const FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const FLAG_CAN_MULTI_CONN = 1 << 8;

/** Commands. */
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;

/** Command flags. */
export const CMD_FLAG_NO_HOLE = 1 << 1;

/** Structured reply chunk flag and types; bit 15 marks errors. */
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_OFFSET_HOLE = 2;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR_BIT = 0x8000;
export const REPLY_TYPE_ERROR = REPLY_TYPE_ERROR_BIT + 1;
export const REPLY_TYPE_ERROR_OFFSET = REPLY_TYPE_ERROR_BIT + 2;

/** `base:allocation` status bits. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;

/** The meta context vdisk asks for. */
export const BASE_ALLOCATION = 'base:allocation';

/** The IANA port for newstyle negotiation. */
export const DEFAULT_PORT = 10809;
