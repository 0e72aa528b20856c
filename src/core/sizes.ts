/**
 * Sizes as qemu-img reads and prints them: `k M G T P E` suffixes are powers
 * of 1024, `b` means bytes, decimals need a suffix (`1.5G`), `0x` is hex
 * (with a suffix only as a deprecated form). The grammar follows QEMU's `qemu_strtosz`.
 */
import { cTiesToEven } from './c-format.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';

const SUFFIXES: Record<string, bigint> = {
  B: 1n,
  K: 1n << 10n,
  M: 1n << 20n,
  G: 1n << 30n,
  T: 1n << 40n,
  P: 1n << 50n,
  E: 1n << 60n,
};

const U64_MAX = (1n << 64n) - 1n;

/** Why a size string was refused: bad syntax, or a value that does not fit 64 bits. */
export type SizeParseFailure = 'invalid' | 'range';

/** The outcome of {@link parseSizeBig}. */
export type SizeParseResult =
  | {
      /** Parsed. */
      ok: true;
      /** The size in bytes. */
      value: bigint;
    }
  | {
      /** Refused. */
      ok: false;
      /** Why. */
      reason: SizeParseFailure;
    };

function suffixMul(c: string | undefined): bigint | undefined {
  return c === undefined ? undefined : SUFFIXES[c.toUpperCase()];
}

/** Digits as strtoull reads them: leading blanks, an optional sign, then digits of `base`. */
function scanUnsigned(text: string, at: number, base: 10 | 16): { value: bigint; end: number; negative: boolean } | undefined {
  let i = at;
  while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  if (base === 16 && text[i] === '0' && (text[i + 1] === 'x' || text[i + 1] === 'X') && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) i += 2;
  const digit = base === 10 ? /[0-9]/ : /[0-9a-fA-F]/;
  const start = i;
  while (i < text.length && digit.test(text[i] ?? '')) i++;
  if (i === start) return undefined;
  return { value: BigInt((base === 16 ? '0x' : '') + text.slice(start, i)), end: i, negative };
}

/**
 * Told of each size written in hex with a multiplier suffix (`0x1M`), which
 * qemu-img 7.2 takes with a deprecation warning. The CLI prints that
 * warning; the SDK takes such sizes quietly.
 */
export const sizeDeprecations: { onHexSuffix: ((text: string) => void) | undefined } = { onHexSuffix: undefined };

/** Runs `fn` without reporting hex suffixes: a value read again after its option was checked (and reported). */
export function withoutSizeWarnings<T>(fn: () => T): T {
  const sink = sizeDeprecations.onHexSuffix;
  sizeDeprecations.onHexSuffix = undefined;
  try {
    return fn();
  } finally {
    sizeDeprecations.onHexSuffix = sink;
  }
}

/**
 * Parses a size exactly as qemu-img does (`qemu_strtosz`), returning a bigint so
 * that values up to 2^64-1 survive. Never throws.
 */
export function parseSizeBig(text: string, defaultSuffix = 'B'): SizeParseResult {
  const invalid: SizeParseResult = { ok: false, reason: 'invalid' };
  const dec = scanUnsigned(text, 0, 10);
  if (!dec) return invalid;
  if (text.slice(0, dec.end).includes('-')) return invalid;
  if (dec.value > U64_MAX) return { ok: false, reason: 'range' };
  let val = dec.value;
  let end = dec.end;
  let fraction = 0n; // 0.64 fixed point
  let hexSuffix = false;
  if (val === 0n && (text[end] === 'x' || text[end] === 'X')) {
    const hex = scanUnsigned(text, 0, 16);
    if (!hex) return invalid;
    if (hex.value > U64_MAX) return { ok: false, reason: 'range' };
    val = hex.value;
    end = hex.end;
    if (text[end] === '.') return invalid;
    // Hex digits take b and E themselves; k, M, G, T, P still scale (deprecated, with a warning, in qemu 7.2).
    hexSuffix = suffixMul(text[end]) !== undefined;
  } else if (text[end] === '.') {
    const m = /^\.[0-9]*(?:[eE][+-]?[0-9]+)?/.exec(text.slice(end));
    const lexeme = m?.[0] ?? '.';
    if (lexeme === '.') {
      end += 1; // "1.k" works without fractional digits
    } else if (/[eE]/.test(lexeme)) {
      return invalid;
    } else {
      const f = Number(lexeme);
      fraction = BigInt(Math.floor(f * 2 ** 64));
      end += lexeme.length;
    }
  }
  let mul = suffixMul(text[end]);
  if (mul !== undefined) end += 1;
  else mul = suffixMul(defaultSuffix) ?? 1n;
  // qemu warns once the suffix is read, before it looks at what follows.
  if (hexSuffix) sizeDeprecations.onHexSuffix?.(text);
  if (end !== text.length) return invalid;
  if (mul === 1n) {
    if (fraction !== 0n) return invalid;
    return { ok: true, value: val };
  }
  const frac = fraction * mul;
  let result = val * mul + (frac >> 64n);
  result += (frac >> 63n) & 1n; // round 0.5 up
  if (result > U64_MAX) return { ok: false, reason: 'range' };
  return { ok: true, value: result };
}

/**
 * Parses a size for an API caller. Accepts numbers (whole, non-negative,
 * safe integers) and qemu-img size strings.
 *
 * @param what - what the size is, for the message ("image size")
 * @throws {InvalidArgumentError} EINVAL with qemu-img's wording
 * @example
 * ```ts
 * parseSize('1.5G'); // 1610612736
 * ```
 */
export function parseSize(value: string | number, what = 'image size', max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw sizeRangeError(what, max);
    if (value > max) throw sizeRangeError(what, max);
    return value;
  }
  const r = parseSizeBig(value);
  if (!r.ok && r.reason === 'invalid') {
    throw new InvalidArgumentError(
      `Invalid ${what} specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.`,
      { reason: 'size-syntax', data: { what } },
    );
  }
  if (!r.ok || r.value > BigInt(max)) throw sizeRangeError(what, max, r.ok ? r.value : undefined);
  return Number(r.value);
}

const INT64_MAX = 2n ** 63n - 1n;

function sizeRangeError(what: string, max: number, value?: bigint): InvalidArgumentError {
  // qemu-img's bound is INT64_MAX; ours is the largest exactly representable size, and said so plainly in between.
  if (max === Number.MAX_SAFE_INTEGER && value !== undefined && value <= INT64_MAX) {
    const What = what.charAt(0).toUpperCase() + what.slice(1);
    return new UnsupportedError(`${What} ${value} is larger than vdisk supports (2^53 - 1)`, { data: { kind: 'size-limit', what, max } });
  }
  const shown = max === Number.MAX_SAFE_INTEGER ? '9223372036854775807' : String(max);
  return new InvalidArgumentError(`Invalid ${what} specified. Must be between 0 and ${shown}.`, {
    data: { kind: 'size-range', what, max },
  });
}

/** `printf("%0.3g")` as C prints it. */
function formatG3(exact: number): string {
  if (exact === 0) return '0';
  const value = cTiesToEven(exact, 3);
  const exp = Math.floor(Math.log10(Math.abs(value)));
  let s = value.toPrecision(3);
  // toPrecision may round up into the next decade (999.7 → "1.00e+3"); C then also switches to e-form.
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m || exp < -4 || exp >= 3) {
    const [mant, e] = value.toExponential(2).split('e');
    const mantissa = (mant ?? '0').replace(/\.?0+$/, '');
    const n = Number(e);
    if (n >= -4 && n < 3) return Number(value.toPrecision(3)).toString();
    return `${mantissa}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  if (s.includes('.')) s = s.replace(/\.?0+$/, '');
  return s;
}

const UNIT_NAMES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/**
 * A size as qemu-img prints it in human output: three significant digits
 * and an IEC unit, switching units once the integer part reaches 1000.
 *
 * @example
 * ```ts
 * formatSize(1114624); // "1.06 MiB"
 * ```
 */
export function formatSize(bytes: number): string {
  const x = bytes / (1000 / 1024);
  let e = 0;
  if (x > 0) {
    e = Math.floor(Math.log2(x)) + 1;
    // guard against log2 rounding at exact powers of two
    if (2 ** (e - 1) > x) e -= 1;
    else if (2 ** e <= x) e += 1;
  }
  const i = Math.min(Math.trunc((e - 1) / 10), UNIT_NAMES.length - 1);
  const div = 2 ** (i * 10);
  return `${formatG3(bytes / div)} ${UNIT_NAMES[i] ?? ''}B`;
}
