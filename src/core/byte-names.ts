/**
 * File names are bytes on Linux, not text: `a\xff.qcow2` is a valid name,
 * and qemu-img passes it through untouched. JavaScript strings cannot hold
 * such bytes, and Node decodes argv and encodes fs paths as UTF-8, so names
 * that are not UTF-8 were mangled (opened a different file, or none).
 *
 * vdisk carries every name as a string in which each byte that is not part
 * of valid UTF-8 stands as a lone low surrogate U+DC80..U+DCFF (Python's
 * "surrogateescape"). Valid UTF-8 never decodes to a lone surrogate, so a
 * name that is UTF-8 is its ordinary string, and any name maps back to its
 * exact bytes: at fs calls (io/fs-names.ts), on output (the CLI writes the
 * bytes, as qemu-img prints them) and in image headers (backing file names).
 */

/** The first byte an escape stands for, and the code unit for it. */
const ESCAPE_BASE = 0xdc00;
/** A lone low surrogate in the escape range: not preceded by a high surrogate. */
const ESCAPE = /(?:^|[^\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** The length of the valid UTF-8 sequence at `i`, or 0 when it is not one (bad lead, overlong, surrogate, > U+10FFFF, truncated). */
function utf8Length(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  const cont = (k: number): boolean => i + k < b.length && ((b[i + k] as number) & 0xc0) === 0x80;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const c1 = b[i + 1] as number;
    if (!cont(1) || !cont(2) || (c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c1 = b[i + 1] as number;
    if (!cont(1) || !cont(2) || !cont(3) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The string for a name's bytes: UTF-8, with every other byte escaped (never lossy). */
export function decodeName(bytes: Uint8Array): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < bytes.length; ) {
    const n = utf8Length(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += utf8.decode(bytes.subarray(start, i)) + String.fromCharCode(ESCAPE_BASE + (bytes[i] as number));
    start = ++i;
  }
  return out + utf8.decode(bytes.subarray(start));
}

/** Whether `name` holds escaped bytes (is not plain UTF-8). */
export function hasEscapes(name: string): boolean {
  return ESCAPE.test(name);
}

/** The exact bytes of a name decoded by {@link decodeName} (UTF-8 for ordinary strings). */
export function encodeName(name: string): Buffer {
  if (!hasEscapes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff) {
      i++; // a pair: never an escape
      continue;
    }
    if (u < 0xdc80 || u > 0xdcff) continue;
    parts.push(Buffer.from(name.slice(start, i), 'utf8'), Buffer.from([u - ESCAPE_BASE]));
    start = i + 1;
  }
  parts.push(Buffer.from(name.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** What an fs call needs for `name`: the string itself, or its bytes when it is not UTF-8. */
export function fsName(name: string): string | Buffer {
  return hasEscapes(name) ? encodeName(name) : name;
}

/** How many bytes a lead byte's sequence claims (qemu's mod_utf8_codepoint). */
function claimed(lead: number): number {
  if (lead >= 0xc0 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf7) return 4;
  return 1;
}

/**
 * `name` as qemu's JSON writer sees its bytes: each invalid sequence (a
 * lead byte with the continuation bytes it claims, or one stray byte)
 * becomes one U+FFFD.
 */
export function replaceEscapes(name: string): string {
  if (!hasEscapes(name)) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < name.length) {
      out += name.slice(i, i + 2);
      i++;
      continue;
    }
    if (u < 0xdc80 || u > 0xdcff) {
      out += name[i];
      continue;
    }
    let more = claimed(u - ESCAPE_BASE) - 1;
    while (more > 0 && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xffc0) === 0xdc80) {
      i++;
      more--;
    }
    out += '\uFFFD';
  }
  return out;
}
