/**
 * The SDK's images and outputs arrive from JavaScript callers, typed or not:
 * anything that is neither a name, a ByteStore nor parsed image options is
 * refused here with an InvalidArgumentError naming what it was, before a
 * property of it is read (which failed with TypeErrors such as "Cannot read
 * properties of undefined").
 */
import { InvalidArgumentError } from '../core/errors.js';
import { QDict } from '../core/qdict.js';

/** What a value is, for the message: `undefined`, `null`, `a number`, `an object without read()`. */
function described(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return `a ${typeof value}`;
  const missing = ['name', 'read', 'size', 'close'].filter((k) => !(k in value));
  return missing.length > 0 ? `an object without ${missing.join(', ')}` : 'an object that is not a ByteStore';
}

/** Duck-typed: what every ByteStore has (a name and the calls every open makes). */
function isStoreLike(value: object): boolean {
  const s = value as Record<string, unknown>;
  return typeof s['name'] === 'string' && typeof s['read'] === 'function' && typeof s['size'] === 'function' && typeof s['close'] === 'function';
}

function isOptionsLike(value: object): boolean {
  return 'options' in value && (value as { options: unknown }).options instanceof QDict;
}

/**
 * Refuses an image to read that is not a name (path, URL, `json:` name), a
 * ByteStore or parsed image options; `role` names it in the message.
 */
export function checkImageTarget(value: unknown, role = 'image'): void {
  if (typeof value === 'string') return;
  if (typeof value === 'object' && value !== null && (isStoreLike(value) || isOptionsLike(value))) return;
  throw new InvalidArgumentError(`The ${role} must be a file name, a URL, a ByteStore or parsed image options, not ${described(value)}`);
}

/** Refuses an output that is not a name or a ByteStore. */
export function checkOutputSpec(value: unknown, role = 'target'): void {
  if (typeof value === 'string') return;
  if (typeof value === 'object' && value !== null && isStoreLike(value)) return;
  throw new InvalidArgumentError(`The ${role} must be a file name, a URL or a ByteStore, not ${described(value)}`);
}
