/**
 * An upload opened for judging as a cloud would: the file, inflated when
 * compressed or zipped (gzip, zstd, bzip2, zip), read as a tar archive when it is one (an OVA, a
 * GCE tarball), and its disk — the file itself, or the archive's disk
 * entry seen through a window. Nothing the disk names is opened here.
 */
import { isZeroBlock, parseTarHeader, TAR_BLOCK, tarEntrySpan, type TarFormat, type TarHeader } from '../core/tar.js';
import { FileStore } from '../io/file-store.js';
import { WindowStore } from '../io/window-store.js';
import type { ByteStore } from '../io/byte-store.js';
import type { UnwrapSettings } from './ingest-policy.js';
import { unwrapStore } from './unwrap.js';

/** One entry of a tar archive, where its data starts. */
export interface ArchiveEntry extends TarHeader {
  /** Where its data starts in the archive. */
  readonly offset: number;
}

/** What is known of a tar archive around the disk. */
export interface ArchiveFacts {
  /** The archive's entries, in order. */
  readonly entries: readonly ArchiveEntry[];
  /** The first entry's header format. */
  readonly format: TarFormat | 'v7';
  /** The OVF descriptor's text, when the archive has a `.ovf` entry. */
  readonly ovf: string | undefined;
  /** The manifest's text, when the archive has a `.mf` entry. */
  readonly manifest: string | undefined;
}

/** An opened upload; close it when done. */
export interface OpenedUpload {
  readonly filename: string;
  /** The wrapper it was inflated from (`gzip`, `zip`). */
  readonly compression: string | undefined;
  readonly archive: ArchiveFacts | undefined;
  /** The disk's bytes (undefined: an archive with no disk entry). */
  readonly disk: ByteStore | undefined;
  /** The name the disk is reported under (`file.ova/disk.vmdk` inside an archive). */
  readonly diskName: string;
  close(): Promise<void>;
}

/** Most entries read from an archive: clouds' archives hold a handful. */
const MAX_ENTRIES = 64;
/** Largest descriptor or manifest read into memory. */
const MAX_TEXT = 1024 * 1024;

async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  const got = await store.read(offset, buf);
  return buf.subarray(0, got);
}

/** The entries of a tar archive, or undefined when `store` does not start with a tar header. */
async function readEntries(store: ByteStore): Promise<ArchiveEntry[] | undefined> {
  const size = await store.size();
  const entries: ArchiveEntry[] = [];
  for (let at = 0; at + TAR_BLOCK <= size && entries.length < MAX_ENTRIES; ) {
    const block = await readAt(store, at, TAR_BLOCK);
    if (isZeroBlock(block)) break;
    const h = parseTarHeader(block);
    if (!h) break;
    entries.push({ ...h, offset: at + TAR_BLOCK });
    at += tarEntrySpan(h.size);
  }
  return entries.length === 0 ? undefined : entries;
}

async function entryText(store: ByteStore, entries: readonly ArchiveEntry[], pattern: RegExp): Promise<string | undefined> {
  const e = entries.find((x) => pattern.test(x.name));
  if (!e) return undefined;
  return new TextDecoder().decode(await readAt(store, e.offset, Math.min(e.size, MAX_TEXT)));
}

async function archiveFacts(store: ByteStore): Promise<ArchiveFacts | undefined> {
  const entries = await readEntries(store);
  if (!entries) return undefined;
  return { entries, format: entries[0]!.format, ovf: await entryText(store, entries, /\.ovf$/i), manifest: await entryText(store, entries, /\.mf$/i) };
}

/** The archive's disk entry: the first regular file that is not a descriptor, manifest or certificate. */
function diskEntry(a: ArchiveFacts): ArchiveEntry | undefined {
  return a.entries.find((e) => !/\.(ovf|mf|cert)$/i.test(e.name) && (e.type === '0' || e.type === '\0'));
}

/** Opens `image` (a path, or a store the caller keeps open) for judging. */
export async function openUpload(image: string | ByteStore, settings: UnwrapSettings, signal?: AbortSignal): Promise<OpenedUpload> {
  const file = typeof image === 'string' ? await FileStore.open(image, { readOnly: true }) : image;
  const closeFile = async (): Promise<void> => void (typeof image === 'string' ? await file.close() : undefined);
  try {
    const unwrapped = settings.enabled ? await unwrapStore(file, file.name, settings, signal) : undefined;
    const store = unwrapped?.store ?? file;
    const close = async (): Promise<void> => {
      await unwrapped?.store.close();
      await closeFile();
    };
    try {
      const archive = await archiveFacts(store);
      const entry = archive ? diskEntry(archive) : undefined;
      const disk = archive ? (entry ? new WindowStore(store, entry.offset, entry.size) : undefined) : store;
      return { filename: file.name, compression: unwrapped?.wrapper.type, archive, disk, diskName: entry ? `${file.name}/${entry.name}` : file.name, close };
    } catch (err) {
      await unwrapped?.store.close();
      throw err;
    }
  } catch (err) {
    await closeFile();
    throw err;
  }
}
