/**
 * The name qemu gives an image opened from options (bdrv_refresh_filename):
 * the file's plain name when the options change nothing a plain open would
 * not do, otherwise `json:{...}` with the options that matter ("strong"
 * ones: raw's window, qcow2's encryption secret, a null device's size, a
 * replaced backing file). `info` and `check` report this name.
 */
import { QDict, qdictToJson, type QDictValue } from '../core/qdict.js';
import type { ProtocolNode } from './spec-open.js';

/** Options that change what a format node reads (qemu's strong_runtime_opts; a trailing `.` is a prefix). */
const STRONG: Readonly<Record<string, readonly string[]>> = {
  raw: ['offset', 'size'],
  qcow: ['encrypt.key-secret'],
  qcow2: ['encrypt.key-secret'],
  vpc: ['force_size_calc'],
};

/** A node's plain name (when it has one) and the options that reopen it. */
export interface NodeName {
  readonly exact: string | undefined;
  readonly full: QDict;
}

/** The name to show: the plain one, or `json:` and the options. */
export function shownName(n: NodeName): string {
  return n.exact ?? `json:${qdictToJson(n.full)}`;
}

/** How the user replaced the backing file, as far as the name is concerned. */
export type BackingName = { readonly kind: 'header' } | { readonly kind: 'none'; readonly hadBacking: boolean } | { readonly kind: 'spec'; readonly full: QDict };

/**
 * The name of a format node over `file`. `given` holds the node's options
 * as the user wrote them; `format` is the format opened (probed or given).
 * Commands that do no I/O (info) pass `backing` as `header`: qemu ignores a
 * replaced backing file for their names.
 */
export function formatNodeName(format: string, given: QDict, file: ProtocolNode, backing: BackingName): NodeName {
  const full = new QDict();
  full.set('driver', given.get('driver') ?? format);
  let strongGiven = false;
  for (const opt of STRONG[format] ?? []) {
    for (const [key, value] of given.entries()) {
      if (opt.endsWith('.') ? !key.startsWith(opt) : key !== opt) continue;
      full.set(key, value);
      strongGiven = true;
    }
  }
  const overridden = backing.kind === 'spec' || (backing.kind === 'none' && backing.hadBacking);
  if (backing.kind === 'spec') full.set('backing', backing.full);
  full.set('file', file.full);
  if (backing.kind === 'none' && overridden) full.set('backing', null as QDictValue);
  const exact = file.exact !== undefined && !strongGiven && !overridden ? file.exact : undefined;
  return { exact, full };
}
