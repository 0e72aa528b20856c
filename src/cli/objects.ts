/**
 * `--object`: qemu-img creates each object as it parses the option and
 * exits on a bad one. vdisk has no object it needs, so it validates them
 * as qemu does (type, id, a secret's properties) and otherwise leaves
 * them alone: a command line qemu-img refuses is refused here too.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { splitEscaped } from '../core/options.js';
import type { OptSpec } from './args.js';

/** The types `qemu-img --object help` lists. */
const CREATABLE = [
  'authz-list', 'authz-list-file', 'authz-simple', 'main-loop', 'pr-manager-helper', 'secret', 'secret_keyring',
  'thread-context', 'throttle-group', 'tls-cipher-suites', 'tls-creds-anon', 'tls-creds-psk', 'tls-creds-x509',
] as const;

/** Object types qemu's schema knows but qemu-img cannot create ("invalid object type"). */
const KNOWN_ELSEWHERE = new Set([
  'authz-listfile', 'authz-pam', 'can-bus', 'can-host-socketcan', 'colo-compare', 'cryptodev-backend', 'cryptodev-backend-builtin',
  'cryptodev-vhost-user', 'dbus-vmstate', 'filter-buffer', 'filter-dump', 'filter-mirror', 'filter-redirector', 'filter-replay',
  'filter-rewriter', 'input-barrier', 'input-linux', 'iothread', 'memory-backend-epc', 'memory-backend-file', 'memory-backend-memfd',
  'memory-backend-ram', 'pef-guest', 'rng-builtin', 'rng-egd', 'rng-random', 'sev-guest', 's390-pv-guest', 'x-remote-object', 'x-vfio-user-server',
]);

const SECRET_PROPS = new Set(['data', 'file', 'format', 'keyid', 'iv', 'loaded']);

/** `--object help` (or `?`): qemu-img prints the list and exits 0. */
export class ObjectHelpRequest extends Error {
  readonly text = `List of user creatable objects:\n${CREATABLE.map((t) => `  ${t}\n`).join('')}`;
  constructor() {
    super('object help');
    this.name = 'ObjectHelpRequest';
  }
}

function properties(text: string): Map<string, string> {
  if (text.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError(`JSON parse error, ${text}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError('Invalid JSON object given');
    return new Map(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  }
  const props = new Map<string, string>();
  splitEscaped(text).forEach((part, i) => {
    if (part === '') return;
    const eq = part.indexOf('=');
    // The first item without '=' is the implied qom-type.
    if (eq < 0 && i === 0) props.set('qom-type', part);
    else if (eq < 0) throw new InvalidArgumentError(`Expected '=' after parameter '${part}'`);
    else props.set(part.slice(0, eq), part.slice(eq + 1));
  });
  return props;
}

/**
 * Validates one `--object` argument as qemu-img 7.2 does.
 *
 * @throws {ObjectHelpRequest} for `help`
 * @throws {InvalidArgumentError} with qemu's message for a bad object
 */
export function checkObject(text: string): void {
  if (text === 'help' || text === '?') throw new ObjectHelpRequest();
  const props = properties(text);
  const type = props.get('qom-type');
  if (type === undefined) throw new InvalidArgumentError("Parameter 'qom-type' is missing");
  if (!(CREATABLE as readonly string[]).includes(type)) {
    if (KNOWN_ELSEWHERE.has(type)) throw new InvalidArgumentError(`invalid object type: ${type}`);
    throw new InvalidArgumentError(`Parameter 'qom-type' does not accept value '${type}'`);
  }
  const id = props.get('id');
  if (id === undefined) throw new InvalidArgumentError("Parameter 'id' is missing");
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) {
    throw new InvalidArgumentError("Parameter 'id' expects an identifier", { hint: "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter." });
  }
  if (type !== 'secret') return;
  for (const key of props.keys()) {
    if (key !== 'qom-type' && key !== 'id' && !SECRET_PROPS.has(key)) throw new InvalidArgumentError(`Parameter '${key}' is unexpected`);
  }
  if (props.has('data') === props.has('file')) {
    throw new InvalidArgumentError(props.has('data') ? "'file' and 'data' are mutually exclusive" : "Either 'file' or 'data' must be provided");
  }
}

/** The `--object` option every command accepts, checked as it is parsed. */
export const OBJECT_OPTION: OptSpec = { key: 'object', long: ['object'], arg: true, multi: true, check: checkObject };
