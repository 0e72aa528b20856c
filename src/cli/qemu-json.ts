/**
 * JSON exactly as qemu-img prints it: 4-space indentation, empty containers
 * on two lines, non-ASCII escaped as \uXXXX. Keys print in the object's own
 * order: `toQemuJson` already puts them in QEMU's QDict iteration order.
 */
import { replaceEscapes } from '../core/byte-names.js';

export { qdictOrder } from '../core/qdict.js';

function escapeString(s: string): string {
  let out = '"';
  for (const ch of replaceEscapes(s)) {
    const cp = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      default:
        if (cp > 0xffff) {
          const v = cp - 0x10000;
          out += `\\u${hex4(0xd800 | (v >> 10))}\\u${hex4(0xdc00 | (v & 0x3ff))}`;
        } else if (cp < 0x20 || cp >= 0x7f) {
          out += `\\u${hex4(cp)}`;
        } else {
          out += ch;
        }
    }
  }
  return out + '"';
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function formatValue(value: unknown, level: number): string {
  const pad = '    '.repeat(level);
  const inner = '    '.repeat(level + 1);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return escapeString(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : formatDouble(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    if (value.length === 0) return `[\n${pad}]`;
    return `[\n${value.map((v) => inner + formatValue(v, level + 1)).join(',\n')}\n${pad}]`;
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
    if (keys.length === 0) return `{\n${pad}}`;
    return `{\n${keys.map((k) => `${inner}${escapeString(k)}: ${formatValue(obj[k], level + 1)}`).join(',\n')}\n${pad}}`;
  }
  return 'null';
}

function formatDouble(n: number): string {
  // QEMU prints doubles with %.17g
  return String(Number(n.toPrecision(17)));
}

/**
 * Pretty-prints `value` as qemu-img's `--output=json` does (without the
 * trailing newline), keys in the order the object holds them (pass what
 * `toQemuJson` returns); keys whose value is undefined are left out
 * (QAPI's absent optionals).
 */
export function formatQemuJson(value: unknown): string {
  return formatValue(value, 0);
}
