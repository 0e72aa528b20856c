/**
 * The one place a wrapped upload (`disk.img.gz`, an appliance `.zip`)
 * becomes an image the drivers can read with random access. It is
 * inflated into a private directory (mkdtemp, mode 0700, under `TMPDIR` or
 * the policy's tmpDir), never beside a job's target, and the file is
 * unlinked as soon as it is open: nobody else can open it, and nothing is
 * left behind when the process dies. The caller keeps the upload's own
 * name and directory for the image, so references inside it resolve (and
 * `untrusted` confines them) as if it sat where the upload does.
 */
import { readForProbe } from './probe.js';
import type { ByteStore } from '../io/byte-store.js';
import { privateFile } from '../io/private-file.js';
import { detectWrapper, inflateInto, type Wrapper } from '../io/unwrap.js';
import type { UnwrapSettings } from './ingest-policy.js';

/** A wrapper found around an image. */
export interface WrapperInfo {
  /** `gzip`, `zip`, `zstd` or `bzip2`. */
  readonly type: Wrapper;
  /** Bytes of the wrapped file. */
  readonly compressedSize: number;
  /** Bytes the wrapped file occupies on disk, when known (what `info` reports as its disk size). */
  readonly allocatedSize?: number | undefined;
  /** Bytes of the image once inflated. */
  readonly inflatedSize: number;
  /** The archive entry holding the image (zip). */
  readonly entry?: string | undefined;
}

/** An inflated upload: a private store named as the upload, and what wrapped it. */
export interface Unwrapped {
  readonly store: ByteStore;
  readonly wrapper: WrapperInfo;
}

/** The wrapper `store` has, judged by its first bytes. */
export async function wrapperOf(store: ByteStore): Promise<Wrapper | undefined> {
  const head = new Uint8Array(4);
  const got = await readForProbe(store, head);
  return got === head.length ? detectWrapper(head) : undefined;
}

/**
 * Inflates `source` when it is compressed or zipped (gzip, zstd, bzip2, zip); undefined when it is
 * not (the caller then opens it as it is). `source` stays the caller's.
 *
 * @throws {PolicyError} EPOLICY past `settings.maxSize`, {@link CorruptImageError} ECORRUPT (bad data, CRC),
 *   {@link UnsupportedError} EUNSUPPORTED (encrypted zip entries, bzip2, lzma, several files)
 */
export async function unwrapStore(source: ByteStore, name: string, settings: UnwrapSettings, signal?: AbortSignal): Promise<Unwrapped | undefined> {
  const type = await wrapperOf(source);
  if (!type) return undefined;
  const out = await privateFile(settings.tmpDir, 'vdisk-unwrap', name);
  try {
    const r = await inflateInto(source, type, out, { maxSize: settings.maxSize, signal });
    return { store: out, wrapper: { type, compressedSize: await source.size(), allocatedSize: await source.allocatedSize?.(), inflatedSize: r.size, entry: r.entry } };
  } catch (err) {
    await out.close();
    throw err;
  }
}
