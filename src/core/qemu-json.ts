/**
 * The JSON qemu reads after `json:` (qobject/json-lexer.c, json-parser.c,
 * json-streamer.c) and writes into `json:` file names (qobject/qjson.c),
 * as pure functions: single-quoted strings are accepted, numbers keep
 * qemu's text (an integer stays an integer, a double prints as `%.17g`),
 * and every malformed input fails with qemu's message.
 */
import { decodeName, encodeName, replaceEscapes } from './byte-names.js';
import { InvalidArgumentError } from './errors.js';

/** A number as qemu holds it: its canonical text (`512`, `0.10000000000000001`). */
export interface QNumber {
  /** The number as qemu prints it. */
  readonly num: string;
}

/** A parsed JSON value. Objects keep their keys in source order (qemu's QDict order is applied when printing). */
export type QValue = string | boolean | null | QNumber | QValue[] | QObject;

/** A JSON object. */
export type QObject = Map<string, QValue>;

/** True when `v` is a number. */
export function isQNumber(v: QValue): v is QNumber {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);
}

const MAX_NESTING = 1024;

type Token =
  | { kind: 'punct'; text: '{' | '}' | '[' | ']' | ',' | ':' }
  | { kind: 'string'; text: string; quote: string }
  | { kind: 'number'; text: string; float: boolean }
  | { kind: 'keyword'; text: string };

/** What the lexer found: a token, or qemu's "stray" error for the text of a malformed one. */
type Lexed = Token | { kind: 'error'; text: string };

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isLower = (c: string | undefined): boolean => c !== undefined && c >= 'a' && c <= 'z';

/** Whether the code unit at `i` stands for a byte that is not UTF-8 (core/byte-names.ts), not the low half of a pair. */
function isEscapedByte(text: string, i: number): boolean {
  const u = text.charCodeAt(i);
  const prev = i > 0 ? text.charCodeAt(i - 1) : 0;
  return u >= 0xdc80 && u <= 0xdcff && !(prev >= 0xd800 && prev <= 0xdbff);
}

/** Scans a string literal; strings are byte-oriented in qemu: control characters end them in error. */
function lexString(text: string, start: number): { token: Lexed; end: number } {
  const quote = text[start] as string;
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    // qemu's lexer takes bytes 0x20..0xFD in strings: a control character, 0xFE or 0xFF ends one in error.
    if (c < 0x20 || ((c === 0xdcfe || c === 0xdcff) && isEscapedByte(text, i))) return { token: { kind: 'error', text: text.slice(start, i + 1) }, end: i + 1 };
    if (text[i] === '\\') {
      if (i + 1 >= text.length) break;
      if (text.charCodeAt(i + 1) < 0x20) return { token: { kind: 'error', text: text.slice(start, i + 2) }, end: i + 2 };
      i += 2;
      continue;
    }
    if (text[i] === quote) return { token: { kind: 'string', text: text.slice(start, i + 1), quote }, end: i + 1 };
    i++;
  }
  return { token: { kind: 'error', text: text.slice(start) }, end: text.length };
}

/** Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; a character that breaks it joins the error text. */
function lexNumber(text: string, start: number): { token: Lexed; end: number } {
  let i = start;
  const fail = (): { token: Lexed; end: number } => {
    if (i >= text.length) return { token: { kind: 'error', text: text.slice(start) }, end: text.length };
    const next = firstByte(text, i);
    return { token: { kind: 'error', text: text.slice(start, i) + next.text }, end: i + next.width };
  };
  if (text[i] === '-') i++;
  let zero = false;
  if (text[i] === '0') {
    i++;
    zero = true;
    if (isDigit(text[i])) return fail();
  } else if (isDigit(text[i])) {
    while (isDigit(text[i])) i++;
  } else return fail();
  let float = false;
  if (text[i] === '.') {
    float = true;
    i++;
    if (!isDigit(text[i])) return fail();
    while (isDigit(text[i])) i++;
  }
  // qemu's lexer takes no exponent straight after a lone 0 (`0e5` is 0, then a keyword)
  if ((text[i] === 'e' || text[i] === 'E') && !(zero && !float)) {
    float = true;
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    if (!isDigit(text[i])) return fail();
    while (isDigit(text[i])) i++;
  }
  return { token: { kind: 'number', text: text.slice(start, i), float }, end: i };
}

function lexOne(text: string, i: number): { token: Lexed; end: number } {
  const c = text[i] as string;
  if ('{}[],:'.includes(c)) return { token: { kind: 'punct', text: c as '{' }, end: i + 1 };
  if (c === '"' || c === "'") return lexString(text, i);
  if (c === '-' || isDigit(c)) return lexNumber(text, i);
  if (isLower(c)) {
    let j = i;
    while (isLower(text[j])) j++;
    return { token: { kind: 'keyword', text: text.slice(i, j) }, end: j };
  }
  const bad = firstByte(text, i);
  return { token: { kind: 'error', text: bad.text }, end: i + bad.width };
}

/**
 * The character at `i` as qemu's byte lexer reports it when it breaks a
 * token: ASCII and escaped bytes as they are, any other character as its
 * first UTF-8 byte alone (escaped); `width` is the code units it spans.
 */
function firstByte(text: string, i: number): { text: string; width: number } {
  const cp = text.codePointAt(i) as number;
  if (cp < 0x80 || isEscapedByte(text, i)) return { text: text[i] as string, width: 1 };
  const lead = new TextEncoder().encode(String.fromCodePoint(cp))[0] as number;
  return { text: String.fromCharCode(0xdc00 + lead), width: cp > 0xffff ? 2 : 1 };
}

/**
 * Splits `text` into top-level messages as qemu's streamer does: each
 * complete value, or an error. Braces and brackets are counted apart, and
 * the tokens so far are parsed as soon as both are closed or either goes
 * below zero (a stray `]` inside an object ends the message there).
 */
function* messages(text: string): Generator<Token[] | { error: string }> {
  let queue: Token[] = [];
  let braces = 0;
  let brackets = 0;
  let i = 0;
  while (i < text.length) {
    if (' \t\r\n'.includes(text[i] as string)) {
      i++;
      continue;
    }
    const { token, end } = lexOne(text, i);
    i = end;
    if (token.kind === 'error') {
      queue = [];
      braces = brackets = 0;
      yield { error: `JSON parse error, stray '${token.text}'` };
      continue;
    }
    if (token.kind === 'punct') {
      if (token.text === '{') braces++;
      else if (token.text === '}') braces--;
      else if (token.text === '[') brackets++;
      else if (token.text === ']') brackets--;
    }
    if (braces + brackets > MAX_NESTING) {
      queue = [];
      braces = brackets = 0;
      yield { error: 'JSON nesting depth limit exceeded' };
      continue;
    }
    queue.push(token);
    if ((braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0) continue;
    yield queue;
    queue = [];
    braces = brackets = 0;
  }
  if (queue.length > 0) yield queue;
}

class ParseError extends Error {}

/** qemu's parse_string: escapes, `\u` with surrogate pairs, and nothing else. */
function decodeString(tok: { text: string; quote: string }): string {
  const body = tok.text.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '\\') {
      if (isEscapedByte(body, i)) throw new ParseError('invalid UTF-8 sequence in string');
      out += c;
      continue;
    }
    const e = body[++i];
    const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
    if (e !== undefined && e in simple) {
      out += simple[e];
      continue;
    }
    if (e !== 'u') throw new ParseError('invalid escape sequence in string');
    // qemu quotes the escape as `\u` and the four bytes after it (not characters: `\ud8é` for "\ud8é3").
    const bad = (at: number): ParseError => new ParseError(`\\u${decodeName(encodeName((body + tok.quote).slice(at + 2)).subarray(0, 4))} is not a valid Unicode character`);
    const hex = (at: number): number => (/^[0-9a-fA-F]{4}$/.test(body.slice(at + 2, at + 6)) ? parseInt(body.slice(at + 2, at + 6), 16) : -1);
    const start = i - 1;
    const cp = hex(start);
    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) throw bad(start);
    i = start + 5;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const low = body[i + 1] === '\\' && body[i + 2] === 'u' ? hex(i + 1) : -1;
      if (low < 0xdc00 || low > 0xdfff) throw bad(start);
      out += String.fromCharCode(cp, low);
      i += 6;
      continue;
    }
    out += String.fromCharCode(cp);
  }
  return out;
}

/** C's `%.17g`, which qemu uses for doubles. */
export function formatDouble(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : n < 0 ? '-inf' : 'nan';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const [mant = '', e = '0'] = n.toExponential(16).split('e');
  const exp = Number(e);
  const trim = (t: string): string => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
  if (exp < -4 || exp >= 17) return `${trim(mant)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return trim(n.toFixed(16 - exp));
}

/** An integer token stays an integer when it fits int64 or uint64, else it becomes a double. */
function numberText(tok: { text: string; float: boolean }): string {
  if (!tok.float) {
    const big = BigInt(tok.text);
    if (big >= -(2n ** 63n) && big < 2n ** 64n) return big.toString();
  }
  return formatDouble(Number(tok.text));
}

class Parser {
  #pos = 0;
  constructor(readonly tokens: readonly Token[]) {}

  #next(): Token {
    const t = this.tokens[this.#pos++];
    if (!t) throw new ParseError('premature EOI');
    return t;
  }

  #peek(): Token | undefined {
    return this.tokens[this.#pos];
  }

  value(): QValue {
    const t = this.#peek();
    if (!t) throw new ParseError('premature EOI');
    if (t.kind === 'punct') {
      if (t.text === '{') return this.#object();
      if (t.text === '[') return this.#array();
      throw new ParseError('expecting value');
    }
    this.#pos++;
    if (t.kind === 'string') return decodeString(t);
    if (t.kind === 'number') return { num: numberText(t) };
    if (t.text === 'true') return true;
    if (t.text === 'false') return false;
    if (t.text === 'null') return null;
    throw new ParseError(`invalid keyword '${t.text}'`);
  }

  #object(): QObject {
    this.#pos++;
    const out: QObject = new Map();
    const first = this.#peek();
    if (first?.kind === 'punct' && first.text === '}') {
      this.#pos++;
      return out;
    }
    for (;;) {
      const key = this.value();
      if (typeof key !== 'string') throw new ParseError('key is not a string in object');
      const colon = this.#next();
      if (colon.kind !== 'punct' || colon.text !== ':') throw new ParseError('missing : in object pair');
      const value = this.value();
      if (out.has(key)) throw new ParseError('duplicate key');
      out.set(key, value);
      const sep = this.#next();
      if (sep.kind === 'punct' && sep.text === '}') return out;
      if (sep.kind !== 'punct' || sep.text !== ',') throw new ParseError('expected separator in dict');
    }
  }

  #array(): QValue[] {
    this.#pos++;
    const out: QValue[] = [];
    const first = this.#peek();
    if (first?.kind === 'punct' && first.text === ']') {
      this.#pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      const sep = this.#next();
      if (sep.kind === 'punct' && sep.text === ']') return out;
      if (sep.kind !== 'punct' || sep.text !== ',') throw new ParseError('expected separator in list');
    }
  }
}

/**
 * Parses exactly one JSON value as qemu's qobject_from_json does.
 *
 * @example
 * ```ts
 * parseQemuJson("{'driver': 'raw', 'size': 512}"); // Map { driver → 'raw', size → { num: '512' } }
 * ```
 * @throws {InvalidArgumentError} EINVAL with qemu's message (`JSON parse error, ...`, `Expecting a JSON value`, ...)
 */
export function parseQemuJson(text: string): QValue {
  let result: QValue | undefined;
  let error: string | undefined;
  for (const msg of messages(text)) {
    if (result !== undefined) {
      error = 'Expecting at most one JSON value';
      result = undefined;
    }
    if (error !== undefined) continue;
    if (!Array.isArray(msg)) {
      error = msg.error;
      continue;
    }
    try {
      const p = new Parser(msg);
      result = p.value();
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      error = `JSON parse error, ${err.message}`;
    }
  }
  if (error !== undefined) throw new InvalidArgumentError(error);
  if (result === undefined) throw new InvalidArgumentError('Expecting a JSON value');
  return result;
}

/** A string as qemu's JSON writer escapes it (`\uXXXX` in upper case for control and non-ASCII characters). */
function quote(s: string): string {
  let out = '"';
  for (const ch of replaceEscapes(s)) {
    const cp = ch.codePointAt(0) as number;
    const named: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };
    if (named[cp]) out += named[cp];
    else if (cp > 0xffff) {
      const v = cp - 0x10000;
      out += `\\u${(0xd800 + (v >> 10)).toString(16).toUpperCase()}\\u${(0xdc00 + (v & 0x3ff)).toString(16).toUpperCase()}`;
    } else if (cp < 0x20 || cp >= 0x7f) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/**
 * Writes a value as qemu's compact JSON (`{"a": 1, "b": [true, null]}`),
 * object keys in the order `order` gives (qemu prints a QDict in its hash
 * order: see qdict.ts).
 */
export function toQemuJson(value: QValue, order: (keys: readonly string[]) => readonly string[] = (k) => k): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return quote(value);
  if (Array.isArray(value)) return `[${value.map((v) => toQemuJson(v, order)).join(', ')}]`;
  if (value instanceof Map) {
    const keys = order([...value.keys()]);
    return `{${keys.map((k) => `${quote(k)}: ${toQemuJson(value.get(k) as QValue, order)}`).join(', ')}}`;
  }
  return value.num;
}
