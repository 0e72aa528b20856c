/**
 * Integers as qemu-img reads them with qemu_strtoi/qemu_strtoul and a NULL
 * end pointer: glibc's strtol reading (leading white space, a sign, base 0's
 * `0x` hex and `0` octal prefixes), the whole string consumed, at least one
 * digit. `-m ' 8'`, `+8` and `0x8` are 8; `08` (bad octal) and `8 ` are not.
 */

const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** The sign and magnitude strtol reads in all of `text` (base 0), or undefined. */
function readWhole(text: string): { negative: boolean; magnitude: bigint } | undefined {
  let i = 0;
  while (i < text.length && SPACE.has(text[i]!)) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') negative = text[i++] === '-';
  let base = 10;
  if (text[i] === '0' && (text[i + 1] === 'x' || text[i + 1] === 'X') && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
    base = 16;
    i += 2;
  } else if (text[i] === '0') {
    base = 8;
  }
  const digits = text.slice(i);
  const valid = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return undefined;
  const prefix = base === 16 ? '0x' : base === 8 ? '0o' : '';
  return { negative, magnitude: BigInt(prefix + digits) };
}

const ULONG_MAX = 2n ** 64n - 1n;

/** qemu_strtoul: a negative number wraps (as strtoul's does); undefined for bad syntax or beyond 2^64 - 1. */
export function qemuStrtoul(text: string): bigint | undefined {
  const r = readWhole(text);
  if (r === undefined || r.magnitude > ULONG_MAX) return undefined;
  return r.negative && r.magnitude !== 0n ? ULONG_MAX + 1n - r.magnitude : r.magnitude;
}

/** qemu_strtoi: undefined for bad syntax or outside a C int. */
export function qemuStrtoi(text: string): number | undefined {
  const r = readWhole(text);
  if (r === undefined) return undefined;
  const v = r.negative ? -r.magnitude : r.magnitude;
  return v < -(2n ** 31n) || v > 2n ** 31n - 1n ? undefined : Number(v);
}
