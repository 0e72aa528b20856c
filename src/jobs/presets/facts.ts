/**
 * The facts the preset rules judge, gathered through the inspect and info
 * jobs (external references never followed): the file, inflated when
 * gzip'd, read as a tar archive when it is one, and the disk image — the
 * file itself or the archive's disk entry, seen through a window.
 */
import { isZeroBlock, parseTarHeader, TAR_BLOCK, tarEntrySpan } from '../../core/tar.js';
import { FileStore } from '../../io/file-store.js';
import { WindowStore } from '../../io/window-store.js';
import type { ByteStore } from '../../io/byte-store.js';
import { unwrapSettings, type IngestPolicy } from '../../block/ingest-policy.js';
import { unwrapStore } from '../../block/unwrap.js';
import { info, type ImageInfo } from '../info.js';
import { inspect } from '../inspect.js';
import type { ArchiveEntry, ArchiveFacts, DiskFacts, ImageFacts } from './types.js';

/** Options of fact gathering. */
export interface FactOptions {
  /** Inflation limits and temporary directory (the trust is always `none`). */
  readonly policy?: IngestPolicy | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Most entries read from an archive: clouds' archives hold a handful. */
const MAX_ENTRIES = 64;
/** Largest descriptor or manifest read into memory. */
const MAX_TEXT = 1024 * 1024;
const REFERENCE_CODES = new Set(['backing-file', 'data-file', 'external-extent', 'protocol-reference']);

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
    if (!h) return entries.length === 0 ? undefined : entries;
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

/** `info` of the disk as `format`, or undefined when it does not open so. */
async function infoAs(store: ByteStore, format: string | undefined): Promise<ImageInfo | undefined> {
  try {
    return (await info(store, { format, trust: 'none', unwrap: false }))[0];
  } catch {
    return undefined;
  }
}

function subformatOf(i: ImageInfo | undefined): string | undefined {
  if (i?.format === 'vpc') return i.clusterSize === undefined ? 'fixed' : 'dynamic';
  const data = i?.formatSpecific?.data as { createType?: string } | undefined;
  return i?.format === 'vmdk' ? data?.createType : undefined;
}

/** What the disk is, as inspect and info see it. */
async function diskFacts(store: ByteStore, name: string): Promise<DiskFacts> {
  const ins = await inspect(store, { unwrap: false });
  let i = ins.format === undefined ? undefined : await infoAs(store, ins.format);
  // A fixed VHD probes as raw: its only footer is at the end of the file.
  const vhd = ins.format === 'raw' ? await infoAs(store, 'vpc') : undefined;
  if (vhd) i = vhd;
  return {
    filename: name,
    format: i?.format ?? ins.format,
    subformat: subformatOf(i),
    virtualSize: i?.virtualSize ?? ins.virtualSize,
    references: ins.references,
    problems: ins.reasons.filter((r) => !REFERENCE_CODES.has(r.code)),
    formatSpecific: i?.formatSpecific?.data as Record<string, unknown> | undefined,
  };
}

/** The archive's disk entry: the first that is not a descriptor, manifest or certificate. */
function diskEntry(a: ArchiveFacts): ArchiveEntry | undefined {
  return a.entries.find((e) => !/\.(ovf|mf|cert)$/i.test(e.name) && (e.type === '0' || e.type === '\0'));
}

/** Gathers the facts of `image` (a path or a store the caller keeps). */
export async function gatherFacts(image: string | ByteStore, options: FactOptions = {}): Promise<ImageFacts> {
  const file = typeof image === 'string' ? await FileStore.open(image, { readOnly: true }) : image;
  const filename = file.name;
  let unwrapped: Awaited<ReturnType<typeof unwrapStore>>;
  try {
    unwrapped = await unwrapStore(file, filename, unwrapSettings({ policy: options.policy }), options.signal);
    const store = unwrapped?.store ?? file;
    const archive = await archiveFacts(store);
    const entry = archive ? diskEntry(archive) : undefined;
    const diskStore = archive ? (entry ? new WindowStore(store, entry.offset, entry.size) : undefined) : store;
    const disk = diskStore ? await diskFacts(diskStore, entry ? `${filename}/${entry.name}` : filename) : undefined;
    return { filename, compression: unwrapped?.wrapper.type, archive, disk };
  } finally {
    await unwrapped!?.store.close();
    if (typeof image === 'string') await file.close();
  }
}
