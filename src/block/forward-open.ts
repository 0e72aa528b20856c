/**
 * Opening an image read from a forward-only stream (a pipe, stdin, an
 * upload): the bytes are pulled on demand, wrappers (gzip, zstd, tar/OVA,
 * zip) peeled off as they flow, the format probed from the first bytes as
 * {@link probeHead} probes a file (or taken as given), the ingest policy
 * applied as an open applies it, and the driver's forward reader started.
 */
import { UnsupportedError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { ForwardImage, SpillSettings } from '../formats/driver.js';
import { StreamSource, type ByteChunks as IoByteChunks } from '../io/forward-source.js';
import { unwrapStream, type StreamWrapper as IoStreamWrapper } from '../io/unwrap-stream.js';
import { checkFormatAllowed, checkVirtualSize, unwrapSettings, type IngestPolicy } from './ingest-policy.js';
import { probeHead } from './probe.js';
import { defaultRegistry, type DriverRegistry } from './registry.js';
import { isPassThroughFormat } from '../formats/index.js';

/** A forward-only source of chunks (a Node Readable, a web stream's reader, any async iterable of bytes). */
export type ByteChunks = IoByteChunks;
/** A wrapper peeled off a stream (named here so jobs reach io/ only through block/). */
export type StreamWrapper = IoStreamWrapper;

/** Bytes kept in memory by default before a reader spills (SpillSettings.memory). */
const DEFAULT_SPILL_MEMORY = 64 * 1024 * 1024;

/** How a forward image is opened. */
export interface ForwardOpenOptions {
  /** Name of the source in messages (default `-`). */
  readonly name?: string | undefined;
  /** Format of the image (probed when omitted; `raw` takes the bytes as they are, wrappers included). */
  readonly format?: string | undefined;
  /** Peel gzip, zstd, tar and zip wrappers off the stream (default true; see IngestPolicy.unwrap). */
  readonly unwrap?: boolean | undefined;
  readonly policy?: IngestPolicy | undefined;
  readonly spill?: SpillSettings | undefined;
  readonly registry?: DriverRegistry | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called with the bytes of each chunk taken from the stream. */
  readonly onBytes?: ((n: number) => void) | undefined;
}

/** An image being read from a stream. */
export interface ForwardOpened {
  readonly image: ForwardImage;
  /** The format read. */
  readonly format: string;
  /** Wrappers peeled off, outermost first. */
  readonly wrappers: readonly StreamWrapper[];
  /** The archive entry read (tar, zip). */
  readonly entry: string | undefined;
  /** Bytes taken from the stream so far. */
  readonly bytesRead: () => number;
  /** Checks the virtual size the image ended with against the policy. */
  checkFinalSize(size: number): void;
  /** Reads what follows the image to the end (wrapper trailers are checked; the writer is not cut off). */
  drain(): Promise<void>;
  /** Stops reading the stream. */
  close(): Promise<void>;
}

async function discard(source: StreamSource): Promise<void> {
  while ((await source.readUpTo(1024 * 1024)).length > 0);
}

/**
 * Opens the image on `input` for reading forward.
 *
 * @throws {UnsupportedError} EUNSUPPORTED for a format that cannot be read from a stream, or a wrapper vdisk cannot
 *   decode as a stream
 * @throws {PolicyError} EPOLICY for a format or size the policy refuses
 */
export async function openForward(input: ByteChunks, options: ForwardOpenOptions = {}): Promise<ForwardOpened> {
  const name = options.name ?? '-';
  const registry = options.registry ?? defaultRegistry;
  const outer = new StreamSource(input, { name, signal: options.signal, onBytes: options.onBytes });
  let source = outer;
  try {
    const settings = unwrapSettings(options);
    const unwrapped = settings.enabled && !isPassThroughFormat(options.format) ? await unwrapStream(outer, { maxSize: settings.maxSize, frameLimit: options.spill?.memory ?? DEFAULT_SPILL_MEMORY, signal: options.signal }) : undefined;
    source = unwrapped?.source ?? outer;
    const driver = options.format !== undefined ? registry.get(options.format) : await probeForward(source, name, registry);
    checkFormatAllowed(options.policy, driver.name, name);
    if (!driver.readForward) throw new UnsupportedError(`Format '${driver.name}' cannot be read from a stream`, { file: name });
    const image = await driver.readForward(source, { spill: options.spill, signal: options.signal, name });
    if (image.size !== undefined) checkVirtualSize(options.policy, image.size, name);
    const inner = source;
    return {
      image,
      format: driver.name,
      wrappers: unwrapped?.wrappers ?? [],
      entry: unwrapped?.entry,
      bytesRead: () => outer.position,
      checkFinalSize: (size) => checkVirtualSize(options.policy, size, name),
      async drain() {
        await discard(inner);
        if (inner !== outer) await discard(outer);
      },
      async close() {
        await inner.close();
        await outer.close();
      },
    };
  } catch (err) {
    await source.close();
    await outer.close();
    throw err;
  }
}

/** The driver the stream's first bytes show (an empty stream is raw, as an empty file is). */
async function probeForward(source: StreamSource, name: string, registry: DriverRegistry): Promise<NonNullable<ReturnType<DriverRegistry['find']>>> {
  const got = await source.peek(LIMITS.probeBytes);
  const head = new Uint8Array(LIMITS.probeBytes);
  head.set(got);
  const found = got.length === 0 ? registry.find('raw') : probeHead(head, name, registry)?.driver;
  if (!found) throw new UnsupportedError(`Could not determine the format of '${name}'`, { file: name });
  return found;
}
