/**
 * Opening an image named by options (`json:{...}`, `--image-opts`), the way
 * qemu's bdrv_open_inherit walks them: the `file` child first (a `file`
 * path or a `null-co` device), then the format (given or probed), its
 * generic and driver options, the `backing` override, and last any key
 * nobody took, refused with qemu's message. Only names the user gave come
 * here; names found inside images go through the resolver, which refuses
 * `json:`.
 */
import { InvalidArgumentError, UnknownFormatError, UnsupportedError } from '../core/errors.js';
import { extractSub, optionText, QDict, type QDictValue } from '../core/qdict.js';
import type { ByteStore, FormatDriver, FormatImage, OptionSpec } from '../formats/driver.js';
import { NULL_RUNTIME_OPTIONS, openNull } from '../formats/null/index.js';
import type { LockingMode } from '../io/byte-store.js';
import { cacheSemantics, type CacheMode } from '../core/cache-mode.js';
import { FileStore } from '../io/file-store.js';
import { checkFlagOptions, flagOn, takeFileOptions, takeGenericOptions, type NodeFlags } from './node-options.js';
import type { DriverRegistry } from './registry.js';

/** Drivers qemu-img 7.2 has that vdisk does not (network, filters, host devices). */
const QEMU_ONLY_DRIVERS = new Set([
  'blkdebug', 'blklogwrites', 'blkverify', 'compress', 'copy-before-write', 'copy-on-read', 'ftp', 'ftps', 'gluster',
  'host_cdrom', 'host_device', 'http', 'https', 'iscsi', 'iser', 'nbd', 'nfs', 'nvme', 'preallocate', 'quorum', 'rbd',
  'replication', 'snapshot-access', 'ssh', 'throttle', 'vvfat',
]);

/** Formats whose backing files qemu lets the user override (supports_backing). */
const BACKING_FORMATS = new Set(['qcow2', 'vmdk', 'qcow', 'qed', 'parallels']);

/** How one open walks the options. */
export interface SpecContext {
  readonly registry: DriverRegistry;
  readonly readOnly: boolean;
  /** False when the command opens without backing files: `backing` options are then not taken. */
  readonly withBacking: boolean;
  /**
   * The command only describes images (info; qemu's BDRV_O_NO_IO): backing
   * options are not taken, JSON null is accepted and ignored, and names do
   * not show a replaced backing file.
   */
  readonly describeOnly?: boolean | undefined;
  /** The command's cache mode (`-t`); `cache.direct`/`cache.no-flush` override it. */
  readonly cache?: CacheMode | undefined;
  readonly allowDevices?: boolean | undefined;
  /** Node names seen so far in this open. */
  readonly nodeNames: Set<string>;
}

/** The protocol node under a format: a file, or a null device. */
export interface ProtocolNode {
  readonly store: ByteStore;
  /** Its plain name (`disk.qcow2`, `null-co://`), or undefined when only a `json:` name describes it. */
  readonly exact: string | undefined;
  /** qemu's full_open_options: what reopens it (driver, filename, strong options). */
  readonly full: QDict;
  /** The path of a file node (references inside the image are relative to it). */
  readonly path: string | undefined;
  /** The file's `locking` option (`false` for off, `'auto'`). */
  readonly locking: LockingMode;
  /** The null device itself, when the node is one (used directly when it is the top). */
  readonly nullImage?: FormatImage | undefined;
}

/** What the user asked about the backing file. */
export type BackingChoice = { readonly kind: 'header' } | { readonly kind: 'none' } | { readonly kind: 'spec'; readonly options: QDict };

/** The backing options as given, before the format is known. */
export type PendingBacking = BackingChoice | { readonly kind: 'given'; readonly ref: QDictValue | undefined; readonly options: QDict };

/** A format node ready to open. */
export interface FormatNodePlan {
  readonly driver: FormatDriver;
  readonly probed: boolean;
  readonly file: ProtocolNode;
  /** The driver's own options, `[key, text]` in qemu's order. */
  readonly runtime: readonly (readonly [string, string])[];
  readonly backing: PendingBacking;
  readonly flags: NodeFlags;
  /** The node's options as given (for its `json:` name). */
  readonly given: QDict;
  /** Keys nobody took: refused once the image has opened (qemu checks them last). */
  readonly leftover: QDict;
  /** The `data-file` child the options give (drivers declaring a `data-file` option). */
  readonly dataFile?: DataFileChild | undefined;
}

/**
 * A `data-file` child as the options give it: a node reference, or a file
 * node opened when the driver asks (unlocked: the layer locks it as the
 * image's data).
 */
export type DataFileChild =
  | { readonly kind: 'reference'; readonly name: string }
  | { readonly kind: 'node'; open(readOnly: boolean): Promise<{ readonly store: ByteStore; readonly locking: LockingMode }> };

/** A node that is a protocol used directly as the image (`driver=file`, `driver=null-co`). */
export interface ProtocolTopPlan {
  readonly protocol: ProtocolNode;
  readonly driverName: string;
  readonly flags: NodeFlags;
}

function driverKind(name: string, registry: DriverRegistry): 'file' | 'null' | 'format' {
  if (name === 'file') return 'file';
  if (name === 'null-co' || name === 'null-aio') return 'null';
  if (registry.find(name)) return 'format';
  if (QEMU_ONLY_DRIVERS.has(name)) throw new UnsupportedError(`Driver '${name}' is not supported by vdisk`, { data: { driver: name } });
  throw new UnknownFormatError(`Unknown driver '${name}'`, { data: { format: name } });
}

function leftoverError(dict: QDict, what: 'format' | 'protocol', driver: string): InvalidArgumentError | undefined {
  const key = dict.first();
  if (key === undefined) return undefined;
  return new InvalidArgumentError(
    what === 'protocol' ? `Block protocol '${driver}' doesn't support the option '${key}'` : `Block format '${driver}' does not support the option '${key}'`,
  );
}

/** Throws qemu's error for keys nobody took. */
export function checkLeftover(dict: QDict, what: 'format' | 'protocol', driver: string): void {
  const err = leftoverError(dict, what, driver);
  if (err) throw err;
}

/** The cache mode a node's `cache.direct` / `cache.no-flush` make of the command's one. */
function nodeCache(base: CacheMode | undefined, flags: NodeFlags): CacheMode | undefined {
  if (flags.cacheDirect === undefined && flags.cacheNoFlush === undefined) return base;
  const sem = cacheSemantics(base);
  const direct = flags.cacheDirect ?? sem.direct;
  const noFlush = flags.cacheNoFlush ?? sem.noFlush;
  if (direct) return sem.dsync ? 'directsync' : 'none';
  if (noFlush) return 'unsafe';
  return sem.dsync ? 'writethrough' : 'writeback';
}

/** Options a child inherits from its parent unless it sets them (qemu's bdrv_inherited_options). */
function inherit(child: QDict, parent: QDict): void {
  for (const key of ['cache.direct', 'cache.no-flush', 'force-share']) {
    const v = parent.get(key);
    if (v !== undefined && !child.has(key)) child.set(key, v);
  }
}

/**
 * Opens a protocol node from its options (the `file` child, or the top
 * with `driver=file|null-co|null-aio`). The file is opened but not locked:
 * its lock depends on the format above it.
 */
async function openProtocol(dict: QDict, ctx: SpecContext): Promise<{ node: ProtocolNode; flags: NodeFlags; driverName: string }> {
  checkFlagOptions(dict);
  const original = dict.clone();
  let driverName = typeof dict.get('driver') === 'string' ? (dict.get('driver') as string) : undefined;
  if (driverName === undefined) {
    if (typeof dict.get('filename') !== 'string') throw new InvalidArgumentError('Must specify either driver or file');
    driverName = 'file';
  }
  const kind = driverKind(driverName, ctx.registry);
  if (kind === 'format') throw new UnsupportedError(`Stacking image formats ('${driverName}' as a file node) is not supported by vdisk yet`);
  const flags = takeGenericOptions(dict, ctx.nodeNames);
  if (!ctx.readOnly && flags.readOnly) throw new InvalidArgumentError('Block node is read-only');
  const full = new QDict().set('driver', driverName);
  if (kind === 'null') {
    const pairs = takeDeclared(dict, NULL_RUNTIME_OPTIONS);
    checkLeftover(dict, 'protocol', driverName);
    const image = openNull(driverName as 'null-co', pairs, readOnlyOf(ctx, flags));
    for (const k of ['size', 'read-zeroes']) if (original.has(k)) full.set(k, original.get(k) as QDictValue);
    const exact = full.size === 1 ? `${driverName}://` : undefined;
    return { node: { store: image.store, exact, full, path: undefined, locking: false, nullImage: image }, flags, driverName };
  }
  const cacheDirect = flags.cacheDirect ?? cacheSemantics(ctx.cache).direct;
  const file = takeFileOptions(dict, cacheDirect);
  checkLeftover(dict, 'protocol', 'file');
  full.set('filename', original.get('filename') as QDictValue);
  const store = await FileStore.open(file.filename, { readOnly: readOnlyOf(ctx, flags), allowDevices: ctx.allowDevices, cache: nodeCache(ctx.cache, flags) });
  return { node: { store, exact: file.filename, full, path: file.filename, locking: file.locking }, flags, driverName };
}

function readOnlyOf(ctx: SpecContext, flags: NodeFlags): boolean {
  return ctx.readOnly || flags.readOnly === true;
}

/** The `file` child's options: a reference is refused (vdisk has no named nodes), an absent child is qemu's error. */
function fileChild(dict: QDict, hasDriver: boolean): QDict {
  const ref = dict.get('file');
  const sub = extractSub(dict, 'file.');
  dict.delete('file');
  if (typeof ref === 'string') {
    if (sub.size > 0) throw new InvalidArgumentError('Cannot reference an existing block device with additional options or a new filename');
    throw new InvalidArgumentError(`Cannot find device='${ref}' nor node-name='${ref}'`);
  }
  if (sub.size === 0) throw new InvalidArgumentError(hasDriver ? 'A block device must be specified for "file"' : 'Must specify either driver or file');
  return sub;
}

/**
 * Takes the `backing` options out of a node: JSON null means none (also
 * for commands that describe images without I/O, which then simply follow
 * the header); sub-options or a node reference are judged once the format
 * has opened ({@link judgeBacking}), as qemu does. Commands that open
 * without backing files leave those keys to be refused as unknown.
 */
function takeBacking(dict: QDict, ctx: SpecContext): PendingBacking {
  if (dict.get('backing') === null) {
    dict.delete('backing');
    return ctx.describeOnly ? { kind: 'header' } : { kind: 'none' };
  }
  if (!ctx.withBacking || ctx.describeOnly) return { kind: 'header' };
  const ref = dict.get('backing');
  const sub = extractSub(dict, 'backing.');
  if (ref === undefined && sub.size === 0) return { kind: 'header' };
  dict.delete('backing');
  return { kind: 'given', ref, options: sub };
}

/** The backing choice once the format is known; qemu's errors for a format without backing files and for node references. */
export function judgeBacking(pending: PendingBacking, driver: string): BackingChoice {
  if (pending.kind !== 'given') return pending;
  if (!BACKING_FORMATS.has(driver)) throw new InvalidArgumentError("Driver doesn't support backing files");
  if (typeof pending.ref === 'string') {
    if (pending.options.size > 0) throw new InvalidArgumentError('Cannot reference an existing block device with additional options or a new filename');
    throw new InvalidArgumentError(`Could not open backing file: Cannot find device='${pending.ref}' nor node-name='${pending.ref}'`);
  }
  return { kind: 'spec', options: pending.options };
}

/**
 * Takes the `data-file` child out of a node whose driver declares one:
 * opened only when the driver gets to it (qemu opens it in the middle of
 * qcow2's open, and `info` not at all), with the parent's inherited options.
 */
function takeDataFile(dict: QDict, ctx: SpecContext): DataFileChild | undefined {
  const ref = dict.get('data-file');
  const sub = extractSub(dict, 'data-file.');
  if (typeof ref === 'string') {
    dict.delete('data-file');
    if (sub.size === 0) return { kind: 'reference', name: ref };
    const refused = new InvalidArgumentError('Cannot reference an existing block device with additional options or a new filename');
    return { kind: 'node', open: () => Promise.reject(refused) };
  }
  if (sub.size === 0) return undefined;
  inherit(sub, dict);
  return {
    kind: 'node',
    async open(readOnly) {
      const { node } = await openProtocol(sub.clone(), { ...ctx, readOnly });
      return { store: node.store, locking: node.locking };
    },
  };
}

/**
 * Takes the keys `specs` declares (exact names, or prefixes ending in `.`)
 * out of `dict`, as `[key, text]` in qemu's order; values QemuOpts cannot
 * read (null, lists) stay, to be refused as unknown.
 */
function takeDeclared(dict: QDict, specs: readonly OptionSpec[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [key, value] of dict.entries()) {
    const declared = specs.some((s) => (s.name.endsWith('.') ? key.startsWith(s.name) : key === s.name));
    const text = optionText(value);
    if (!declared || text === undefined) continue;
    pairs.push([key, text]);
    dict.delete(key);
  }
  return pairs;
}

/**
 * Walks a node's options up to the point where its format opens: the file
 * child is opened, the format found (given or probed by `probe`), and the
 * node's own options sorted into generic, driver, backing and leftover.
 */
export async function planFormatNode(
  dict: QDict,
  ctx: SpecContext,
  probe: (store: ByteStore, filename: string) => Promise<FormatDriver>,
): Promise<FormatNodePlan | ProtocolTopPlan> {
  checkFlagOptions(dict);
  const original = dict.clone();
  const driverName = typeof dict.get('driver') === 'string' ? (dict.get('driver') as string) : undefined;
  // bdrv_open_inherit refuses force-share on a writable node (read-only=on makes it read-only, for
  // its file child too) before anything below it opens.
  const writable = !ctx.readOnly && !flagOn(dict, 'read-only');
  const refuseForceShare = (node: QDict): void => {
    if (writable && flagOn(node, 'force-share') && !flagOn(node, 'read-only')) throw new InvalidArgumentError('force-share=on can only be used with read-only images');
  };
  if (driverName !== undefined && driverKind(driverName, ctx.registry) !== 'format') {
    refuseForceShare(dict);
    const { node, flags } = await openProtocol(dict, ctx);
    return { protocol: node, driverName, flags };
  }
  const sub = fileChild(dict, driverName !== undefined);
  inherit(sub, dict);
  refuseForceShare(dict);
  refuseForceShare(sub);
  const { node: file } = await openProtocol(sub, ctx);
  try {
    const driver = driverName !== undefined ? (ctx.registry.find(driverName) as FormatDriver) : await probe(file.store, file.exact ?? '');
    const flags = takeGenericOptions(dict, ctx.nodeNames);
    const backing = takeBacking(dict, ctx);
    const dataFile = driver.runtimeOptions?.some((o) => o.name === 'data-file') ? takeDataFile(dict, ctx) : undefined;
    const runtime = takeDeclared(dict, driver.runtimeOptions ?? []);
    return { driver, probed: driverName === undefined, file, runtime, backing, flags, given: original, leftover: dict, dataFile };
  } catch (err) {
    await file.store.close();
    throw err;
  }
}
