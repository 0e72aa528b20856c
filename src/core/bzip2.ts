/**
 * A bounded bzip2 decoder (pure, no dependency): decodes the first stream
 * of `input` into exactly `outputLength` bytes, as QEMU's dmg-bz2 module
 * asks libbzip2 to (BZ_STREAM_END with all output space used, else
 * failure). Every count read from the stream is checked before it sizes
 * anything; output never grows past `outputLength`; block and stream CRCs
 * are verified. Obsolete randomised blocks (bzip2 < 0.9.5) are refused.
 *
 * Format: "BZh" + level '1'..'9', then blocks (48-bit magic 0x314159265359,
 * CRC, BWT origin, symbol map, Huffman tables, MTF/RLE2 symbols), then the
 * end-of-stream magic 0x177245385090 and the combined CRC.
 */

/** A stream that is not valid bzip2, or that does not decode to the length asked for. */
export class Bzip2Error extends Error {}

const MAX_GROUPS = 6;
const MAX_ALPHA = 258;
const MAX_CODE_LEN = 20;
const GROUP_SIZE = 50;
const MAX_RUN = 2 * 1024 * 1024;
const BLOCK_MAGIC = 0x314159265359;
const END_MAGIC = 0x177245385090;

/** CRC-32/BZIP2 (MSB first, polynomial 0x04C11DB7) tables for slicing by 4: T[k][b] is b followed by k zero bytes. */
type CrcTables = [Uint32Array, Uint32Array, Uint32Array, Uint32Array];

// Built on first use: every command loads this module, few read a dmg.
let crcTables: CrcTables | undefined;

function buildCrcTables(): CrcTables {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t0[i] = c >>> 0;
  }
  const tables = [t0];
  for (let k = 1; k < 4; k++) {
    const prev = tables[k - 1] as Uint32Array;
    tables.push(Uint32Array.from(prev, (c) => ((c << 8) ^ (t0[c >>> 24] as number)) >>> 0));
  }
  return tables as CrcTables;
}

/** Continues a (non-inverted) CRC-32/BZIP2 over `buf[start, end)`, four bytes a step. */
function crcRange(buf: Uint8Array, start: number, end: number, crc: number): number {
  const [t0, t1, t2, t3] = (crcTables ??= buildCrcTables());
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const x = (crc ^ (((buf[i] as number) << 24) | ((buf[i + 1] as number) << 16) | ((buf[i + 2] as number) << 8) | (buf[i + 3] as number))) >>> 0;
    crc = ((t3[x >>> 24] as number) ^ (t2[(x >>> 16) & 0xff] as number) ^ (t1[(x >>> 8) & 0xff] as number) ^ (t0[x & 0xff] as number)) >>> 0;
  }
  for (; i < end; i++) crc = ((crc << 8) ^ (t0[((crc >>> 24) ^ (buf[i] as number)) & 0xff] as number)) >>> 0;
  return crc;
}

/** MSB-first bit reader; reading past the end fails (a truncated stream). */
class Bits {
  #pos = 0;
  #buf = 0;
  #n = 0;
  constructor(private data: Uint8Array) {}

  /** Unread whole bytes. */
  get remaining(): number {
    return this.data.length - this.#pos;
  }

  /** Appends input (the unread bytes are kept; the bit buffer is untouched). */
  feed(more: readonly Uint8Array[]): void {
    const rest = this.data.subarray(this.#pos);
    const joined = new Uint8Array(more.reduce((n, m) => n + m.length, rest.length));
    joined.set(rest);
    let at = rest.length;
    for (const m of more) {
      joined.set(m, at);
      at += m.length;
    }
    this.data = joined;
    this.#pos = 0;
  }

  /** Drops the bits left of the current byte (streams end byte-aligned). */
  align(): void {
    this.#n -= this.#n % 8;
  }

  /** Whole bytes still held in the bit buffer plus those unread. */
  get pending(): number {
    return this.remaining + (this.#n >> 3);
  }

  /** Up to 24 bits (the buffer then stays within 32). */
  bits(count: number): number {
    while (this.#n < count) {
      if (this.#pos >= this.data.length) throw new Bzip2Error('bzip2 stream ends early');
      this.#buf = ((this.#buf << 8) | (this.data[this.#pos++] as number)) >>> 0;
      this.#n += 8;
    }
    this.#n -= count;
    return (this.#buf >>> this.#n) & ((1 << count) - 1);
  }

  bit(): number {
    return this.bits(1);
  }

  bits32(): number {
    return this.bits(16) * 0x10000 + this.bits(16);
  }

  /** 48 bits as a number (exact: below 2^53). */
  bits48(): number {
    return this.bits(24) * 0x1000000 + this.bits(24);
  }
}

/** One Huffman table in libbzip2's limit/base/perm shape. */
interface Table {
  readonly minLen: number;
  readonly limit: Int32Array;
  readonly base: Int32Array;
  readonly perm: Int32Array;
}

function makeTable(lengths: Uint8Array, alphaSize: number): Table {
  let minLen = 32;
  let maxLen = 0;
  for (let i = 0; i < alphaSize; i++) {
    const l = lengths[i] as number;
    if (l > maxLen) maxLen = l;
    if (l < minLen) minLen = l;
  }
  const perm = new Int32Array(MAX_ALPHA);
  let pp = 0;
  for (let len = minLen; len <= maxLen; len++) for (let s = 0; s < alphaSize; s++) if (lengths[s] === len) perm[pp++] = s;
  const base = new Int32Array(MAX_CODE_LEN + 3);
  const limit = new Int32Array(MAX_CODE_LEN + 3);
  for (let s = 0; s < alphaSize; s++) {
    const k = (lengths[s] as number) + 1;
    base[k] = (base[k] as number) + 1;
  }
  for (let i = 1; i < base.length; i++) base[i] = (base[i] as number) + (base[i - 1] as number);
  let vec = 0;
  for (let i = minLen; i <= maxLen; i++) {
    vec += (base[i + 1] as number) - (base[i] as number);
    limit[i] = vec - 1;
    vec <<= 1;
  }
  for (let i = minLen + 1; i <= maxLen; i++) base[i] = (((limit[i - 1] as number) + 1) << 1) - (base[i] as number);
  return { minLen, limit, base, perm };
}

function decodeSymbol(br: Bits, t: Table): number {
  let zn = t.minLen;
  let zvec = br.bits(zn);
  for (;;) {
    if (zn > MAX_CODE_LEN) throw new Bzip2Error('bzip2: bad Huffman code');
    if (zvec <= (t.limit[zn] as number)) break;
    zn++;
    zvec = (zvec << 1) | br.bit();
  }
  const i = zvec - (t.base[zn] as number);
  if (i < 0 || i >= MAX_ALPHA) throw new Bzip2Error('bzip2: bad Huffman code');
  return t.perm[i] as number;
}

/** The symbol map: which byte values the block uses, in order. */
function readSymbolMap(br: Bits): Uint8Array {
  const used: number[] = [];
  const ranges = br.bits(16);
  for (let i = 0; i < 16; i++) {
    if (!(ranges & (0x8000 >> i))) continue;
    const bits = br.bits(16);
    for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) used.push(i * 16 + j);
  }
  if (used.length === 0) throw new Bzip2Error('bzip2: block uses no symbols');
  return Uint8Array.from(used);
}

function readSelectors(br: Bits, nGroups: number): Uint8Array {
  const nSelectors = br.bits(15);
  if (nSelectors < 1) throw new Bzip2Error('bzip2: no selectors');
  const mtf = [0, 1, 2, 3, 4, 5].slice(0, nGroups);
  const out = new Uint8Array(nSelectors);
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (br.bit()) if (++j >= nGroups) throw new Bzip2Error('bzip2: bad selector');
    const v = mtf[j] as number;
    mtf.splice(j, 1);
    mtf.unshift(v);
    out[i] = v;
  }
  return out;
}

function readTables(br: Bits, nGroups: number, alphaSize: number): Table[] {
  const tables: Table[] = [];
  for (let g = 0; g < nGroups; g++) {
    const lengths = new Uint8Array(alphaSize);
    let len = br.bits(5);
    for (let s = 0; s < alphaSize; s++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_LEN) throw new Bzip2Error('bzip2: bad code length');
        if (!br.bit()) break;
        len += br.bit() ? -1 : 1;
      }
      lengths[s] = len;
    }
    tables.push(makeTable(lengths, alphaSize));
  }
  return tables;
}

/**
 * Decodes a block's MTF/RLE2 symbols into `tt` (low byte: the BWT's last
 * column); returns the block length.
 */
function readBlockSymbols(br: Bits, tt: Uint32Array, maxBlock: number): number {
  const symbols = readSymbolMap(br);
  const alphaSize = symbols.length + 2;
  const nGroups = br.bits(3);
  if (nGroups < 2 || nGroups > MAX_GROUPS) throw new Bzip2Error('bzip2: bad table count');
  const selectors = readSelectors(br, nGroups);
  const tables = readTables(br, nGroups, alphaSize);
  const eob = alphaSize - 1;
  const mtf = Uint8Array.from(symbols.keys());
  let n = 0;
  let group = 0;
  let left = 0;
  let table = tables[0] as Table;
  let run = 0;
  let runWeight = 1;
  const next = (): number => {
    if (left === 0) {
      if (group >= selectors.length) throw new Bzip2Error('bzip2: selectors exhausted');
      table = tables[selectors[group++] as number] as Table;
      left = GROUP_SIZE;
    }
    left--;
    return decodeSymbol(br, table);
  };
  const flushRun = (): void => {
    if (run === 0) return;
    if (n + run > maxBlock) throw new Bzip2Error('bzip2: block too long');
    tt.fill(symbols[mtf[0] as number] as number, n, n + run);
    n += run;
    run = 0;
    runWeight = 1;
  };
  for (;;) {
    const sym = next();
    if (sym <= 1) {
      // RUNA adds 1×weight, RUNB 2×weight: a bijective base-2 run length
      run += (sym + 1) * runWeight;
      runWeight *= 2;
      if (runWeight >= MAX_RUN || run > maxBlock) throw new Bzip2Error('bzip2: run too long');
      continue;
    }
    flushRun();
    if (sym === eob) return n;
    if (n >= maxBlock) throw new Bzip2Error('bzip2: block too long');
    const idx = sym - 1;
    const v = mtf[idx] as number;
    mtf.copyWithin(1, 0, idx);
    mtf[0] = v;
    tt[n++] = symbols[v] as number;
  }
}

/**
 * Undoes the BWT and the initial run-length coding, appending to `out`;
 * returns the block CRC. When `out.buf` is full it is yielded whole (`drain`:
 * the caller takes it, and filling starts over at 0) or the block fails.
 */
function* emitBlock(tt: Uint32Array, n: number, origPtr: number, out: { buf: Uint8Array; len: number }, drain: boolean): Generator<Uint8Array, number, void> {
  const cftab = new Uint32Array(257);
  for (let i = 0; i < n; i++) {
    const k = ((tt[i] as number) & 0xff) + 1;
    cftab[k] = (cftab[k] as number) + 1;
  }
  for (let i = 1; i < 257; i++) cftab[i] = (cftab[i] as number) + (cftab[i - 1] as number);
  for (let i = 0; i < n; i++) {
    const uc = (tt[i] as number) & 0xff;
    const at = cftab[uc] as number;
    tt[at] = ((tt[at] as number) | (i << 8)) >>> 0;
    cftab[uc] = at + 1;
  }
  // hot loop: no closures, locals only
  const buf = out.buf;
  const cap = buf.length;
  let len = out.len;
  let from = len;
  let crc = 0xffffffff;
  let pos = (tt[origPtr] as number) >>> 8;
  let prev = -1;
  let same = 0;
  for (let i = 0; i < n; i++) {
    if (pos >= n) throw new Bzip2Error('bzip2: bad BWT origin');
    const entry = tt[pos] as number;
    const b = entry & 0xff;
    pos = entry >>> 8;
    let copies = 1;
    let value = b;
    if (same === 4) {
      copies = b;
      value = prev;
      same = 0;
      prev = -1;
    } else {
      same = b === prev ? same + 1 : 1;
      prev = b;
    }
    while (copies > 0) {
      if (len === cap) {
        if (!drain) throw new Bzip2Error('bzip2: output longer than expected');
        crc = crcRange(buf, from, len, crc);
        yield buf;
        len = from = 0;
      }
      if (copies === 1) {
        buf[len++] = value;
        break;
      }
      const take = Math.min(copies, cap - len);
      buf.fill(value, len, len + take);
      len += take;
      copies -= take;
    }
  }
  out.len = len;
  return ~crcRange(buf, from, len, crc) >>> 0;
}

/**
 * Reads a stream header ("BZh" and the level); returns the stream's largest
 * block, or undefined when `lenient` and the bytes are not a header (what
 * follows the last of concatenated streams).
 */
function streamHeader(br: Bits, lenient: boolean): number | undefined {
  if (br.bits(8) !== 0x42 || br.bits(8) !== 0x5a || br.bits(8) !== 0x68) {
    if (lenient) return undefined;
    throw new Bzip2Error('bzip2: bad stream header');
  }
  const level = br.bits(8) - 0x30;
  if (level < 1 || level > 9) throw new Bzip2Error('bzip2: bad block size');
  return level * 100000;
}

/** A stream being decoded: its largest block, the combined CRC so far, and the block table (made on the first block). */
interface StreamState {
  readonly maxBlock: number;
  combined: number;
  tt?: Uint32Array | undefined;
}

/**
 * Decodes the next block of a stream into `out` (see emitBlock for `drain`);
 * returns false at the end-of-stream marker, once the stream CRC is checked.
 */
function* nextBlock(br: Bits, stream: StreamState, out: { buf: Uint8Array; len: number }, drain: boolean): Generator<Uint8Array, boolean, void> {
  const magic = br.bits48();
  if (magic === END_MAGIC) {
    if (br.bits32() !== stream.combined) throw new Bzip2Error('bzip2: stream CRC mismatch');
    return false;
  }
  if (magic !== BLOCK_MAGIC) throw new Bzip2Error('bzip2: bad block magic');
  const blockCrc = br.bits32();
  if (br.bit()) throw new Bzip2Error('bzip2: randomised blocks are not supported');
  const origPtr = br.bits(24);
  const tt = (stream.tt ??= new Uint32Array(stream.maxBlock));
  const n = readBlockSymbols(br, tt, stream.maxBlock);
  if (origPtr >= n) throw new Bzip2Error('bzip2: bad BWT origin');
  if ((yield* emitBlock(tt, n, origPtr, out, drain)) !== blockCrc) throw new Bzip2Error('bzip2: block CRC mismatch');
  stream.combined = (((stream.combined << 1) | (stream.combined >>> 31)) ^ blockCrc) >>> 0;
  return true;
}

/**
 * Decodes the first bzip2 stream of `input`, which must yield exactly
 * `outputLength` bytes (trailing input is ignored).
 *
 * @throws {Bzip2Error} for a malformed or truncated stream, a CRC mismatch, or any other output length
 */
export function decodeBzip2(input: Uint8Array, outputLength: number): Uint8Array {
  const br = new Bits(input);
  const stream: StreamState = { maxBlock: streamHeader(br, false) as number, combined: 0 };
  const out = { buf: new Uint8Array(outputLength), len: 0 };
  while (finish(nextBlock(br, stream, out, false)));
  if (out.len !== outputLength) throw new Bzip2Error(`bzip2: stream decodes to ${out.len} bytes, not ${outputLength}`);
  return out.buf;
}

/** Runs a generator that never yields (no drain) to its result. */
function finish<T>(g: Generator<Uint8Array, T, void>): T {
  const r = g.next();
  if (!r.done) throw new Bzip2Error('bzip2: output longer than expected');
  return r.value;
}

/**
 * Most bytes one block can take in the stream: 900,000 symbols of at most
 * 20 bits, selectors and tables. Input is held this far ahead, so a block is
 * always decoded from bytes at hand (or the input has ended).
 */
const BLOCK_INPUT_MAX = 2_400_000;

/**
 * Decodes bzip2 as it flows: every stream of `input` in turn (pbzip2 and
 * `cat a.bz2 b.bz2` concatenate streams), yielding the output in pieces of
 * `pieceSize` bytes (the last one shorter). Memory stays near one block of
 * input and one piece of output, whatever the runs inflate to. Bytes after
 * the last stream that do not start another are ignored, as bzip2 does.
 *
 * @throws {Bzip2Error} for a malformed or truncated stream, or a CRC mismatch
 */
export async function* decodeBzip2Stream(input: AsyncIterable<Uint8Array>, pieceSize = 1024 * 1024): AsyncGenerator<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  const br = new Bits(new Uint8Array(0));
  let ended = false;
  // Chunks are gathered and joined to the unread bytes once per refill, not once per chunk.
  const fill = async (want: number): Promise<void> => {
    if (ended || br.remaining >= want) return;
    const got: Uint8Array[] = [];
    let have = br.remaining;
    while (have < want) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      got.push(r.value);
      have += r.value.length;
    }
    br.feed(got);
  };
  const out = { buf: new Uint8Array(pieceSize), len: 0 };
  let tt: Uint32Array | undefined;
  for (let streams = 0; ; streams++) {
    await fill(4);
    if (streams > 0 && br.pending < 4) break;
    const maxBlock = streamHeader(br, streams > 0);
    if (maxBlock === undefined) break;
    // One table serves every stream that fits it (pbzip2 writes many streams of one level).
    const stream: StreamState = { maxBlock, combined: 0, tt: tt !== undefined && tt.length >= maxBlock ? tt : undefined };
    for (let more = true; more; ) {
      await fill(BLOCK_INPUT_MAX);
      const blocks = nextBlock(br, stream, out, true);
      let r = blocks.next();
      for (; !r.done; r = blocks.next()) yield r.value.slice();
      more = r.value;
    }
    tt = stream.tt;
    br.align();
  }
  if (out.len > 0) yield out.buf.slice(0, out.len);
}
