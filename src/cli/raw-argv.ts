/**
 * The command line as bytes. Node decodes argv as UTF-8 and replaces what
 * is not UTF-8 with U+FFFD, so `vdisk info $'a\xff.qcow2'` would name a
 * file that does not exist; qemu-img takes the bytes as they are. On Linux
 * the kernel keeps the raw words in /proc/self/cmdline: the last words are
 * the script's arguments, decoded here so every byte survives (see
 * core/byte-names.ts).
 */
import { readFileSync } from 'node:fs';

import { decodeName } from '../core/byte-names.js';

/** The words of /proc/self/cmdline, or undefined where there is none. */
function cmdlineWords(): Buffer[] | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const words: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(0); i >= 0; i = raw.indexOf(0, start)) {
    words.push(raw.subarray(start, i));
    start = i + 1;
  }
  return words;
}

const lossy = new TextDecoder();

/**
 * The arguments after the script (what `process.argv.slice(2)` holds), each
 * with its exact bytes. Falls back to Node's strings when the raw words do
 * not line up with them (no procfs, a rewritten process title).
 */
export function rawArguments(argv: readonly string[] = process.argv): string[] {
  const given = argv.slice(2);
  const words = cmdlineWords();
  if (!words || words.length < given.length) return given;
  const tail = words.slice(words.length - given.length);
  if (tail.some((w, i) => lossy.decode(w) !== given[i])) return given;
  return tail.map(decodeName);
}
