/**
 * qemu-img's `--output=json` objects from vdisk's typed results: the
 * kebab-case keys of qemu's QAPI schema, optionals qemu leaves out left out,
 * and object keys in the order qemu-img prints them (QDict order; map's
 * hand-printed fixed order), so the CLI prints exactly what qemu-img does.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { qdictOrder } from '../core/qdict.js';
import type { CheckReport } from './check.js';
import type { ImageInfo, ImageSnapshotInfo } from './info.js';
import { formatSpecificJson } from './info-format-specific.js';
import type { MapEntry } from './map.js';
import type { MeasureResult } from './measure.js';

/** A JSON object as qemu-img prints it (kebab-case keys, in its print order). */
export type QemuJsonObject = { [key: string]: QemuJsonValue };

/** A JSON value as qemu-img prints it. */
export type QemuJsonValue = string | number | boolean | QemuJsonValue[] | QemuJsonObject;

/** The results {@link toQemuJson} knows: `info`, `check`, `measure` and `map` results, or arrays of them. */
export type QemuJsonResult = ImageInfo | CheckReport | MeasureResult | MapEntry;

/** Objects in qemu's QDict print order (insertion must be schema order), undefined members left out. */
function qdictOrdered(value: unknown): QemuJsonValue {
  if (Array.isArray(value)) return value.map(qdictOrdered);
  if (typeof value !== 'object' || value === null) return value as QemuJsonValue;
  const obj = value as Record<string, unknown>;
  const keys = qdictOrder(Object.keys(obj).filter((k) => obj[k] !== undefined));
  return Object.fromEntries(keys.map((k) => [k, qdictOrdered(obj[k])]));
}

function snapshotJson(s: ImageSnapshotInfo): Record<string, unknown> {
  return {
    'id': s.id,
    'name': s.name,
    'vm-state-size': s.vmStateSize,
    'date-sec': s.dateSec,
    'date-nsec': s.dateNsec,
    'vm-clock-sec': s.vmClockSec,
    'vm-clock-nsec': s.vmClockNsec,
    'icount': s.icount,
  };
}

/** QAPI `ImageInfo`, in schema order. */
function infoJson(i: ImageInfo): Record<string, unknown> {
  return {
    'filename': i.filename,
    'format': i.format,
    'dirty-flag': i.dirtyFlag,
    'actual-size': i.actualSize,
    'virtual-size': i.virtualSize,
    'cluster-size': i.clusterSize,
    'encrypted': i.encrypted,
    'backing-filename': i.backingFilename,
    'full-backing-filename': i.fullBackingFilename,
    'backing-filename-format': i.backingFilenameFormat,
    'snapshots': i.snapshots?.map(snapshotJson),
    'format-specific': i.formatSpecific && formatSpecificJson(i.formatSpecific),
  };
}

/** QAPI `ImageCheck`, in schema order; counts of zero are left out as qemu leaves them out. */
function checkJson(r: CheckReport): Record<string, unknown> {
  const opt = (n: number | undefined): number | undefined => (n ? n : undefined);
  return {
    'filename': r.filename,
    'format': r.format,
    'check-errors': r.checkErrors,
    'image-end-offset': opt(r.imageEndOffset),
    'corruptions': opt(r.corruptions),
    'leaks': opt(r.leaks),
    'corruptions-fixed': opt(r.corruptionsFixed),
    'leaks-fixed': opt(r.leaksFixed),
    'total-clusters': opt(r.totalClusters),
    'allocated-clusters': opt(r.allocatedClusters),
    'fragmented-clusters': opt(r.fragmentedClusters),
    'compressed-clusters': opt(r.compressedClusters),
  };
}

/** QAPI `BlockMeasureInfo`, in schema order. */
function measureJson(m: MeasureResult): Record<string, unknown> {
  return { 'required': m.required, 'fully-allocated': m.fullyAllocated, 'bitmaps': m.bitmaps, 'exact-size': m.exactSize };
}

/** One `map --output=json` entry: qemu 7.2 prints these by hand, in this fixed order, without the file name. */
export function mapEntryJson(e: MapEntry): QemuJsonObject {
  const out: QemuJsonObject = { start: e.start, length: e.length, depth: e.depth, present: e.present, zero: e.zero, data: e.data };
  if (e.offset !== undefined) out['offset'] = e.offset;
  return out;
}

function has(value: object, ...keys: string[]): boolean {
  return keys.every((k) => k in value);
}

function one(result: QemuJsonResult): QemuJsonObject {
  if (typeof result === 'object' && result !== null) {
    if (has(result, 'filename', 'format', 'virtualSize')) return qdictOrdered(infoJson(result as ImageInfo)) as QemuJsonObject;
    if (has(result, 'filename', 'format', 'checkErrors')) return qdictOrdered(checkJson(result as CheckReport)) as QemuJsonObject;
    if (has(result, 'required', 'fullyAllocated')) return qdictOrdered(measureJson(result as MeasureResult)) as QemuJsonObject;
    if (has(result, 'start', 'length', 'depth', 'present', 'zero', 'data')) return mapEntryJson(result as MapEntry);
  }
  throw new InvalidArgumentError('toQemuJson takes an info, check, measure or map result');
}

/**
 * The object qemu-img prints for a result with `--output=json`: kebab-case
 * keys, the optionals qemu leaves out left out, keys in qemu-img's print
 * order (`JSON.stringify(toQemuJson(r), null, 4)` differs from qemu-img only
 * in how it prints empty containers and non-ASCII text). An array (the
 * `info` of a backing chain, a list of map entries) maps element by element.
 * The CLI prints these.
 *
 * @example
 * ```ts
 * const [top] = await info('disk.qcow2');
 * const json = toQemuJson(top!);            // { 'virtual-size': ..., 'format-specific': { type: 'qcow2', data: { compat: '1.1', ... } }, ... }
 * const report = toQemuJson(await check('disk.qcow2'));  // { 'check-errors': 0, ... }
 * ```
 * @throws {InvalidArgumentError} EINVAL for anything but an info, check, measure or map result
 */
export function toQemuJson(result: QemuJsonResult): QemuJsonObject;
export function toQemuJson(result: readonly QemuJsonResult[]): QemuJsonObject[];
export function toQemuJson(result: QemuJsonResult | readonly QemuJsonResult[]): QemuJsonObject | QemuJsonObject[] {
  return isList(result) ? result.map(one) : one(result);
}

function isList(result: QemuJsonResult | readonly QemuJsonResult[]): result is readonly QemuJsonResult[] {
  return Array.isArray(result);
}
