/**
 * The options every node of an image takes (qemu's bdrv_runtime_opts:
 * node-name, read-only, cache.*, discard, detect-zeroes, ...) and those of
 * the `file` protocol, checked in qemu's order with qemu's messages. Pure:
 * each function takes its keys out of a node's option dictionary.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { LockingMode } from '../io/byte-store.js';
import { parseQemuOpt, type OptionType, type QemuOptValue } from '../core/options.js';
import { optionText, type QDict } from '../core/qdict.js';

/** What the generic options of one node say. */
export interface NodeFlags {
  readonly readOnly?: boolean | undefined;
  readonly autoReadOnly?: boolean | undefined;
  readonly forceShare?: boolean | undefined;
  readonly cacheDirect?: boolean | undefined;
  readonly cacheNoFlush?: boolean | undefined;
  readonly nodeName?: string | undefined;
}

const GENERIC: readonly (readonly [string, OptionType])[] = [
  ['node-name', 'string'],
  ['driver', 'string'],
  ['discard', 'string'],
  ['cache.direct', 'bool'],
  ['cache.no-flush', 'bool'],
  ['read-only', 'bool'],
  ['auto-read-only', 'bool'],
  ['detect-zeroes', 'string'],
  ['force-share', 'bool'],
];

/**
 * Takes `spec`'s keys out of `dict` and types them in the dictionary's
 * order, so the first bad value is the one qemu names. Values QemuOpts
 * cannot read (null, lists, objects) stay behind as unsupported options.
 */
function absorb(dict: QDict, spec: readonly (readonly [string, OptionType])[]): Map<string, QemuOptValue> {
  const out = new Map<string, QemuOptValue>();
  for (const [key, value] of dict.entries()) {
    const type = spec.find(([k]) => k === key)?.[1];
    const text = optionText(value);
    if (type === undefined || text === undefined) continue;
    out.set(key, parseQemuOpt(key, type, text));
    dict.delete(key);
  }
  return out;
}

const FLAGS = GENERIC.filter(([, type]) => type === 'bool');

/**
 * Types the boolean flags (read-only, cache.*, force-share) without taking
 * them: qemu reads these first, before the node's children open, so a bad
 * one is reported before anything else about the node.
 *
 * @throws {InvalidArgumentError} `Parameter 'x' expects 'on' or 'off'`
 */
export function checkFlagOptions(dict: QDict): void {
  absorb(dict.clone(), FLAGS);
}

/** A boolean flag of a node's options (`force-share`, `read-only`, …), typed as {@link checkFlagOptions} types it. */
export function flagOn(dict: QDict, key: string): boolean {
  return absorb(dict.clone(), FLAGS).get(key) === true;
}

const MAX_NODE_NAME = 31;

function checkNodeName(name: string, names: Set<string>): void {
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(name)) throw new InvalidArgumentError(`Invalid node-name: '${name}'`);
  if (name.length > MAX_NODE_NAME) throw new InvalidArgumentError('Node name too long');
  if (names.has(name)) throw new InvalidArgumentError(`Duplicate nodes with node-name='${name}'`);
  names.add(name);
}

/**
 * bdrv_open_common's generic options: typed, then node-name, discard and
 * detect-zeroes checked. `names` collects the node names of the whole tree.
 *
 * @throws {InvalidArgumentError} with qemu's message
 */
export function takeGenericOptions(dict: QDict, names: Set<string>): NodeFlags {
  const o = absorb(dict, GENERIC);
  const name = o.get('node-name') as string | undefined;
  if (name !== undefined) checkNodeName(name, names);
  const discard = (o.get('discard') as string | undefined) ?? 'ignore';
  if (!['ignore', 'off', 'unmap', 'on'].includes(discard)) throw new InvalidArgumentError('Invalid discard option');
  const zeroes = o.get('detect-zeroes') as string | undefined;
  if (zeroes !== undefined && !['off', 'on', 'unmap'].includes(zeroes)) throw new InvalidArgumentError(`invalid parameter value: ${zeroes}`);
  if (zeroes === 'unmap' && discard !== 'unmap' && discard !== 'on') {
    throw new InvalidArgumentError('setting detect-zeroes to unmap is not allowed without setting discard operation to unmap');
  }
  const bool = (k: string): boolean | undefined => o.get(k) as boolean | undefined;
  return {
    readOnly: bool('read-only'),
    autoReadOnly: bool('auto-read-only'),
    forceShare: bool('force-share'),
    cacheDirect: bool('cache.direct'),
    cacheNoFlush: bool('cache.no-flush'),
    nodeName: name,
  };
}

/** What the `file` protocol's options say. */
export interface FileOptions {
  readonly filename: string;
  /** `locking`: `false` for off, `'auto'` for auto (locks where the process can take them), `true` for on or not given. */
  readonly locking: LockingMode;
}

const FILE: readonly (readonly [string, OptionType])[] = [
  ['filename', 'string'],
  ['aio', 'string'],
  ['aio-max-batch', 'number'],
  ['locking', 'string'],
  ['pr-manager', 'string'],
  ['drop-cache', 'bool'],
  ['x-check-cache-dropped', 'bool'],
];

/**
 * file-posix's options (raw_open_common). `aio`, `aio-max-batch` and the
 * cache-dropping switches tune qemu's I/O engine and change nothing vdisk
 * writes; they are checked and accepted.
 *
 * @throws {InvalidArgumentError} with qemu's message
 */
export function takeFileOptions(dict: QDict, cacheDirect: boolean): FileOptions {
  const o = absorb(dict, FILE);
  const aio = (o.get('aio') as string | undefined) ?? 'threads';
  if (!['threads', 'native', 'io_uring'].includes(aio)) throw new InvalidArgumentError(`invalid parameter value: ${aio}`);
  const locking = (o.get('locking') as string | undefined) ?? 'auto';
  if (!['on', 'off', 'auto'].includes(locking)) throw new InvalidArgumentError(`invalid parameter value: ${locking}`);
  const pr = o.get('pr-manager') as string | undefined;
  if (pr !== undefined) throw new InvalidArgumentError(`No persistent reservation manager with id '${pr}'`);
  const filename = o.get('filename') as string | undefined;
  if (!filename) throw new InvalidArgumentError("The 'file' block driver requires a file name");
  if (aio === 'native' && !cacheDirect) throw new InvalidArgumentError('aio=native was specified, but it requires cache.direct=on, which was not specified.');
  // Not given is vdisk's default (locks required for writing), stricter than qemu's implicit auto.
  const mode = o.has('locking') ? ({ on: true, off: false, auto: 'auto' } as const)[locking as 'on' | 'off' | 'auto'] : true;
  return { filename, locking: mode };
}
