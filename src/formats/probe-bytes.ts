/** Byte comparisons the signature probes share (pure, never throw). */

/** True when `head` holds the ASCII text `text` at `offset`. */
export function startsWithAscii(head: Uint8Array, offset: number, text: string): boolean {
  if (offset + text.length > head.length) return false;
  for (let i = 0; i < text.length; i++) if (head[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** True when the C string at `offset` equals `text` (as strcmp sees it: the text, then a NUL). */
export function isCStringAt(head: Uint8Array, offset: number, text: string): boolean {
  return startsWithAscii(head, offset, text) && head[offset + text.length] === 0;
}
