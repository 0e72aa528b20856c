/**
 * The driver record (qemu's BlockDriver): a stateless table of what a
 * format offers before any image is open. What an open image can do is on
 * {@link FormatImage}; capabilities.ts derives both into one answer.
 */
import type { OptionSpec, OptionValue } from '../../core/options.js';
import type { ByteStore } from '../../io/byte-store.js';
import type { FormatImage } from './image.js';
import type { MeasureResult, MeasureSource } from './measure.js';
import type { CreateRequest, OpenOptions } from './open.js';
import type { ForwardImage, ForwardRequest, ForwardSource, StreamWriter, StreamWriterRequest } from './stream.js';

/** A format driver: one per folder in formats/. */
export interface FormatDriver {
  /** Format name as qemu-img spells it (`qcow2`). */
  readonly name: string;
  /**
   * True for a record that only recognises the format by its signature
   * (a registry may list one so that probing refuses such files instead of
   * guessing raw): `open` always fails and nothing can be created,
   * but probing never mistakes such a file for raw.
   */
  readonly recognisedOnly?: boolean | undefined;
  /**
   * True for a format vdisk only reads, as qemu does (dmg, bochs, cloop):
   * `open` refuses a read/write open before reading the file, so a job that
   * needs a writable image can fail as qemu's writable open fails.
   */
  readonly readOnly?: boolean | undefined;
  /** The `-o` options accepted by create, in qemu's list order. */
  readonly createOptions: readonly OptionSpec[];
  /**
   * Scores how sure the driver is that `head` (the first bytes of the file,
   * at most 4 KiB) is its format: 0 = not mine, 100 = magic matched. Pure,
   * never throws.
   */
  probe(head: Uint8Array, filename: string): number;
  /**
   * Open options the driver takes (qemu's runtime_opts): their keys are
   * accepted from `--image-opts`/`json:` and handed to `open`; any other
   * key is refused by the block layer. A name ending in `.` covers every
   * key with that prefix.
   */
  readonly runtimeOptions?: readonly OptionSpec[] | undefined;
  /** Opens an image on `store`. Validates every header field before use. */
  open(store: ByteStore, options: OpenOptions): Promise<FormatImage>;
  /**
   * The option checks qemu's driver makes before the file protocol creates
   * the file (vmdk checks all of its options first); `create` may repeat
   * them. Absent: the protocol's checks come first.
   */
  validateCreate?(size: number, options: ReadonlyMap<string, OptionValue>): void;
  /** Writes a new empty image of `request.size` onto the (empty, writable) store. */
  create?(store: ByteStore, request: CreateRequest): Promise<void>;
  /**
   * True when creating with these options also makes files named after the
   * image (vmdk extents, qcow2 data files). Such targets are written in
   * place, never under a temporary name.
   */
  createsExtraFiles?(options: ReadonlyMap<string, OptionValue>): boolean;
  // --- amend ---
  /** The `-o` options `amend` accepts, in the driver's list order; absent: no amend (`-o help` needs no image). */
  readonly amendOptions?: readonly OptionSpec[] | undefined;
  // --- measure, persistent bitmaps ---
  /**
   * Estimates the file size of a new image (`qemu-img measure`). `size` is
   * the virtual size asked for (ignored when `source` is given), `options`
   * the typed `-o` options. Absent: "Block driver 'x' does not support size
   * measurement".
   */
  measure?(size: number, options: ReadonlyMap<string, OptionValue>, source?: MeasureSource): Promise<MeasureResult>;
  // --- streams ---
  /**
   * A writer that produces a new image strictly in order (append-only),
   * for `convertToStream` and `measure --exact`. Validates the options as
   * `create` would and refuses those a stream cannot carry. Absent: the
   * format cannot be streamed out.
   */
  streamWriter?(request: StreamWriterRequest): StreamWriter;
  /**
   * Reads an image from a forward-only source (`convertFromStream`).
   * Absent: the format cannot be read from a stream.
   */
  readForward?(source: ForwardSource, request: ForwardRequest): Promise<ForwardImage>;
}
