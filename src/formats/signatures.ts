/**
 * Probe-only recognisers for what a raw disk may hold: an ISO 9660 file
 * system, a GPT or an MBR partition table. They are not drivers (such a
 * file is read as raw); the inspector reports them next to the format
 * drivers' probes, because a file that is both, say, an ISO and a qcow2 is
 * read differently by different consumers (the format-confusion attack).
 * Pure and never throwing, as probes are.
 */
import { startsWithAscii } from './probe-bytes.js';

/** A content signature a file carries. */
export type ContentSignature = 'iso9660' | 'gpt' | 'mbr';

/** Bytes of the start of a file the recognisers need (the last ISO volume descriptor checked). */
export const SIGNATURE_BYTES = 36870;

/** ISO 9660 (and UDF bridge) volume descriptors carry `CD001` after a type byte in sectors 16-18. */
function isIso9660(head: Uint8Array): boolean {
  return [32769, 34817, 36865].some((at) => startsWithAscii(head, at, 'CD001'));
}

/** GPT: `EFI PART` in the header at LBA 1, for 512-byte or 4 KiB sectors. */
function isGpt(head: Uint8Array): boolean {
  return startsWithAscii(head, 512, 'EFI PART') || startsWithAscii(head, 4096, 'EFI PART');
}

/**
 * MBR: the boot signature, and four partition entries whose status bytes
 * are 0x00 or 0x80 with at least one partition typed (what an MBR means;
 * the signature alone is common in boot sectors of anything).
 */
function isMbr(head: Uint8Array): boolean {
  if (head.length < 512 || head[510] !== 0x55 || head[511] !== 0xaa) return false;
  let typed = 0;
  for (let i = 0; i < 4; i++) {
    const entry = 446 + 16 * i;
    const status = head[entry];
    if (status !== 0x00 && status !== 0x80) return false;
    if (head[entry + 4] !== 0) typed++;
  }
  return typed > 0;
}

/** The content signatures `head` (the first {@link SIGNATURE_BYTES} of a file, or all of a shorter one) carries. */
export function contentSignatures(head: Uint8Array): ContentSignature[] {
  const found: ContentSignature[] = [];
  if (isIso9660(head)) found.push('iso9660');
  if (isGpt(head)) found.push('gpt');
  if (isMbr(head)) found.push('mbr');
  return found;
}
