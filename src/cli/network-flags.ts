/**
 * `--header 'Name: value'` (repeatable, vdisk only): extra HTTP headers on
 * every request to an image named by URL, e.g. an `Authorization` header.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { OpenImageOptions } from '../block/chain.js';
import type { OptSpec, ParsedArgs } from './args.js';

/** The options of every command that may read an image by URL. */
export const NETWORK_OPTIONS: readonly OptSpec[] = [{ key: 'header', long: ['header'], arg: true, multi: true, check: parseHeader }];

/** `Name: value` as a pair; a name HTTP would refuse is a usage error. */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new InvalidArgumentError(`Invalid header '${text}' (expecting 'Name: value')`);
  const value = text.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(value)) throw new InvalidArgumentError(`Invalid header '${name}': the value has a line break`);
  return [name, value];
}

/** The `network` open option these options ask for (nothing when none was given). */
export function networkFrom(args: ParsedArgs): Pick<OpenImageOptions, 'network'> {
  const given = args.values.get('header') ?? [];
  if (given.length === 0) return {};
  const headers: Record<string, string> = {};
  for (const text of given) {
    const [name, value] = parseHeader(text);
    headers[name] = value;
  }
  return { network: { headers } };
}
