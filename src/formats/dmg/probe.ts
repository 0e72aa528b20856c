/**
 * DMG is recognised by name only, as QEMU's dmg_probe: a file name longer
 * than four characters ending in `.dmg` (case-sensitive). A weak match:
 * score 2, so any signature wins over it.
 */

/** Score for a file name: 2 for `*.dmg`, 0 otherwise. Never throws. */
export function probeDmg(_head: Uint8Array, filename: string): number {
  return filename.length > 4 && filename.endsWith('.dmg') ? 2 : 0;
}
