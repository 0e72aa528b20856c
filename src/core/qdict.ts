/**
 * qemu's QDict (qobject/qdict.c): a hash table of 512 buckets whose
 * iteration order is the bucket order, newest entry first within a bucket.
 * That order decides which bad option qemu names first and how it prints a
 * `json:` file name, so vdisk keeps option dictionaries in the same order.
 * Pure; no I/O.
 */
import { isQNumber, toQemuJson, type QNumber, type QValue } from './qemu-json.js';

/** A value a QDict holds: a scalar, a list or a nested dictionary. */
export type QDictValue = string | boolean | null | QNumber | QDictValue[] | QDict;

const BUCKETS = 512;

/** qemu's tdb_hash, bucket index of a key. */
function bucketOf(key: string): number {
  let v = Math.imul(0x238f13af, Buffer.byteLength(key)) >>> 0;
  const bytes = Buffer.from(key, 'utf8');
  for (let i = 0; i < bytes.length; i++) v = (v + ((bytes[i] as number) << ((i * 5) % 24))) >>> 0;
  return ((Math.imul(1103515243, v) + 12345) >>> 0) % BUCKETS;
}

/**
 * The order qemu's QDict iterates keys inserted in `insertionOrder`:
 * bucket order, the newest key first within a bucket.
 */
export function qdictOrder(insertionOrder: readonly string[]): string[] {
  return insertionOrder
    .map((key, index) => ({ key, index, bucket: bucketOf(key) }))
    .sort((a, b) => a.bucket - b.bucket || b.index - a.index)
    .map((e) => e.key);
}

/**
 * A dictionary that iterates in qemu's QDict order.
 *
 * @example
 * ```ts
 * const d = parseImageOptsString('file.filename=disk.img,driver=raw').options;
 * d.keys(); // qemu's order, whatever the insertion order
 * ```
 */
export class QDict {
  readonly #buckets = new Map<number, [string, QDictValue][]>();

  /** Puts `key`; an existing key keeps its place (qdict_put_obj). */
  set(key: string, value: QDictValue): this {
    const b = bucketOf(key);
    const list = this.#buckets.get(b) ?? [];
    const hit = list.find((e) => e[0] === key);
    if (hit) hit[1] = value;
    else list.unshift([key, value]);
    this.#buckets.set(b, list);
    return this;
  }

  /** The value of `key`, if present. */
  get(key: string): QDictValue | undefined {
    return this.#buckets.get(bucketOf(key))?.find((e) => e[0] === key)?.[1];
  }

  /** True when `key` is present. */
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Removes `key`; true when it was present. */
  delete(key: string): boolean {
    const list = this.#buckets.get(bucketOf(key));
    const i = list?.findIndex((e) => e[0] === key) ?? -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    return true;
  }

  /** Entries in qemu's iteration order. */
  entries(): [string, QDictValue][] {
    return [...this.#buckets.keys()].sort((a, b) => a - b).flatMap((b) => (this.#buckets.get(b) ?? []).map((e): [string, QDictValue] => [e[0], e[1]]));
  }

  /** Keys in qemu's iteration order. */
  keys(): string[] {
    return this.entries().map((e) => e[0]);
  }

  /** Number of keys. */
  get size(): number {
    return this.entries().length;
  }

  /** A shallow copy with the same iteration order. */
  clone(): QDict {
    const c = new QDict();
    for (const [b, list] of this.#buckets) c.#buckets.set(b, list.map((e): [string, QDictValue] => [e[0], e[1]]));
    return c;
  }

  /** The first key in iteration order (qdict_first), if any. */
  first(): string | undefined {
    return this.keys()[0];
  }
}

/** A parsed JSON value as a QDict tree (objects inserted in source order, as qemu's parser does). */
export function toQDictValue(value: QValue): QDictValue {
  if (Array.isArray(value)) return value.map(toQDictValue);
  if (value instanceof Map) {
    const d = new QDict();
    for (const [k, v] of value) d.set(k, toQDictValue(v));
    return d;
  }
  return value;
}

/**
 * qdict_flatten: non-empty nested dictionaries and lists become dotted keys
 * (`file.filename`, `x.0`); empty ones stay as values. Works on a copy, in
 * qemu's order, so the result iterates as qemu's would.
 */
export function flatten(dict: QDict): QDict {
  const out = dict.clone();
  const put = (prefix: string, value: QDictValue): void => {
    if (value instanceof QDict && value.size > 0) for (const [k, v] of value.entries()) put(`${prefix}.${k}`, v);
    else if (Array.isArray(value) && value.length > 0) value.forEach((v, i) => put(`${prefix}.${i}`, v));
    else out.set(prefix, value);
  };
  for (const [k, v] of dict.entries()) {
    if (!((v instanceof QDict && v.size > 0) || (Array.isArray(v) && v.length > 0))) continue;
    put(k, v);
    out.delete(k);
  }
  return out;
}

/** qdict_extract_subqdict: moves every `prefix…` key out of `dict` into a new dictionary, prefix removed. */
export function extractSub(dict: QDict, prefix: string): QDict {
  const sub = new QDict();
  for (const [k, v] of dict.entries()) {
    if (!k.startsWith(prefix)) continue;
    sub.set(k.slice(prefix.length), v);
    dict.delete(k);
  }
  return sub;
}

/** How QemuOpts reads a value: strings as they are, numbers as their text, booleans as on/off; others are not options. */
export function optionText(value: QDictValue): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (value !== null && isQNumber(value as QValue)) return (value as QNumber).num;
  return undefined;
}

/** Prints a dictionary as qemu's `json:` file names show it: keys in QDict order, `", "` and `": "` separators. */
export function qdictToJson(value: QDictValue): string {
  const toQ = (v: QDictValue): QValue => {
    if (v instanceof QDict) return new Map(v.entries().map(([k, x]) => [k, toQ(x)]));
    if (Array.isArray(v)) return v.map(toQ);
    return v;
  };
  return toQemuJson(toQ(value));
}
