/**
 * `-l snapshot_param` of convert (and measure): `snapshot.id=ID[,snapshot.name=NAME]`
 * or a plain ID_OR_NAME, as qemu-img reads it.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { parseOptionString } from '../core/options.js';
import type { SnapshotSelector } from '../block/snapshot-layer.js';
import { PROG } from './context.js';

const PREFIX = 'snapshot.';

/**
 * Parses a `-l` value. Only values starting with `snapshot.` are option
 * strings; anything else is an ID or name.
 *
 * @throws {InvalidArgumentError} qemu-img's "Invalid parameter" + "Failed in parsing snapshot param" lines
 */
export function parseSnapshotParam(text: string): SnapshotSelector {
  if (!text.startsWith(PREFIX)) return text;
  let id: string | undefined;
  let name: string | undefined;
  for (const { key, value } of parseOptionString(text)) {
    if (key === 'snapshot.id') id = value;
    else if (key === 'snapshot.name') name = value;
    else throw new InvalidArgumentError(`Invalid parameter '${key}'\n${PROG}: Failed in parsing snapshot param '${text}'`);
  }
  return { id, name };
}
