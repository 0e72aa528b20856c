/**
 * A tar archive produced in order from entries of known length, so the
 * archive's own length is known before its first byte (an OVA uploaded
 * with a Content-Length). An entry shorter than its stated length is padded
 * with zeros up to it (GCE's `disk.raw` rounded up to a GiB); a longer one
 * is an error, never a corrupt archive.
 */
import { IoError } from './errors.js';
import { TAR_BLOCK, TAR_END, tarEntrySpan, tarHeader, type TarFormat } from './tar.js';

/** One file of the archive. */
export interface TarEntry {
  readonly name: string;
  /** Bytes the entry holds; `data` may end early, the rest is zeros. */
  readonly length: number;
  /** Its bytes, read when the entry is reached (so a later entry can depend on an earlier one's bytes). */
  readonly data: () => AsyncIterable<Uint8Array>;
}

/** Bytes of the archive holding entries of these lengths. */
export function tarLength(lengths: readonly number[]): number {
  return lengths.reduce((n, len) => n + tarEntrySpan(len), TAR_END);
}

const ZEROS = new Uint8Array(1024 * 1024);

function* zeros(n: number): Generator<Uint8Array> {
  for (let left = n; left > 0; left -= ZEROS.length) yield ZEROS.subarray(0, Math.min(left, ZEROS.length));
}

/** The archive's bytes: each header, its data padded to its length and to a block, then the end blocks. */
export async function* tarStream(entries: readonly TarEntry[], format: TarFormat, mtime = 0): AsyncGenerator<Uint8Array> {
  for (const entry of entries) {
    yield tarHeader(entry.name, entry.length, format, mtime);
    let sent = 0;
    for await (const chunk of entry.data()) {
      sent += chunk.length;
      if (sent > entry.length) throw new IoError(`Tar entry '${entry.name}' grew past its length of ${entry.length} bytes`);
      yield chunk;
    }
    yield* zeros(entry.length - sent + ((TAR_BLOCK - (entry.length % TAR_BLOCK)) % TAR_BLOCK));
  }
  yield* zeros(TAR_END);
}
