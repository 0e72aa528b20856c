/**
 * `--object`: qemu-img creates each object as it parses the option and
 * exits on a bad one. vdisk validates them as qemu does (type, id, a
 * secret's properties) and keeps the secrets, which encrypted images name
 * by id; other objects are checked and left alone: a command line
 * qemu-img refuses is refused here too.
 */
import { isQNumber, parseQemuJson, toQemuJson } from '../core/qemu-json.js';
import { nodeCrypto } from '../core/random.js';
import { readFileSync } from 'node:fs';

import { InvalidArgumentError } from '../core/errors.js';
import { splitEscaped } from '../core/options.js';
import { strerror } from '../core/strerror.js';
import type { OptSpec, ParsedArgs } from './args.js';

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
  // Only a first character '{' makes JSON (qemu looks at optarg[0]): ' {…}' is a key=value list.
  if (text.startsWith('{')) {
    // qemu's own JSON parser and its messages ("JSON parse error, invalid keyword 'bad'").
    const parsed = parseQemuJson(text);
    if (!(parsed instanceof Map)) throw new InvalidArgumentError('Invalid JSON object given');
    return new Map([...parsed].map(([k, v]) => [k, typeof v === 'string' ? v : isQNumber(v) ? v.num : toQemuJson(v)]));
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
function checkObject(text: string): void {
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

/**
 * The `--object` option, checked as it is parsed; a bad one exits with
 * `exitCode` (compare's 2: img_compare exits 2) or the usual 1.
 */
export function objectOption(exitCode?: number): OptSpec {
  const check = (text: string): void => {
    try {
      checkObject(text);
    } catch (err) {
      if (exitCode === undefined || !(err instanceof InvalidArgumentError)) throw err;
      throw new InvalidArgumentError(err.message, { hint: err.hint, exitCode });
    }
  };
  return { key: 'object', long: ['object'], arg: true, multi: true, check };
}

/** The `--object` option every command but compare accepts. */
export const OBJECT_OPTION: OptSpec = objectOption();

const QEMU_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** qbase64_decode's check: only base64 characters, whole groups (padding included). */
function base64Bytes(text: string): Uint8Array {
  if (!QEMU_BASE64.test(text) || text.length % 4 !== 0) throw new InvalidArgumentError('Base64 data contains invalid characters');
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** qcrypto_secret_decrypt: AES-256-CBC under another secret, PKCS#7-style padding stripped. */
function decryptSecret(id: string, input: Uint8Array, props: Map<string, string>, secrets: Map<string, Uint8Array>): Uint8Array {
  const keyid = props.get('keyid') as string;
  const key = secrets.get(keyid);
  if (key === undefined) throw new InvalidArgumentError(keyid === id ? `Secret with id '${id}' has no data` : `No secret with id '${keyid}'`);
  if (key.length !== 32) throw new InvalidArgumentError('Key should be 32 bytes in length');
  const ivText = props.get('iv');
  if (ivText === undefined) throw new InvalidArgumentError('IV is required to decrypt secret');
  const iv = base64Bytes(ivText);
  if (iv.length !== 16) throw new InvalidArgumentError(`IV should be 16 bytes in length not ${iv.length}`);
  const ciphertext = props.get('format') === 'base64' ? base64Bytes(new TextDecoder().decode(input)) : input;
  if (ciphertext.length % 16 !== 0) throw new InvalidArgumentError(`Length ${ciphertext.length} must be a multiple of block size 16`);
  const decipher = nodeCrypto().createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
  const plain = new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  const pad = plain[plain.length - 1] ?? 0;
  if (pad > 16 || pad > plain.length) throw new InvalidArgumentError(`Incorrect number of padding bytes (${pad}) found on decrypted data`);
  return plain.subarray(0, plain.length - pad);
}

function secretValue(id: string, props: Map<string, string>, secrets: Map<string, Uint8Array>): Uint8Array {
  const format = props.get('format') ?? 'raw';
  if (format !== 'raw' && format !== 'base64') throw new InvalidArgumentError(`Parameter 'format' does not accept value '${format}'`);
  let input: Uint8Array;
  const file = props.get('file');
  if (file !== undefined) {
    try {
      input = new Uint8Array(readFileSync(file));
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? strerror(String((err as NodeJS.ErrnoException).code)) : String(err);
      throw new InvalidArgumentError(`Unable to read ${file}: Failed to open file “${file}”: ${reason}`);
    }
  } else {
    input = new TextEncoder().encode(props.get('data') ?? '');
  }
  if (props.has('keyid')) return decryptSecret(id, input, props, secrets);
  return format === 'base64' ? base64Bytes(new TextDecoder().decode(input)) : input;
}

/**
 * The secrets the `--object secret,...` options define, in order (a
 * `keyid` names one defined before it), loaded as qemu loads them:
 * `data=` or `file=`, `format=raw|base64`, optionally encrypted with
 * `keyid=` and `iv=`.
 *
 * @throws {InvalidArgumentError} with qemu's message for a secret that cannot be loaded
 */
export function secretsFrom(args: ParsedArgs): { secrets?: Map<string, Uint8Array> } {
  const secrets = new Map<string, Uint8Array>();
  for (const text of args.values.get('object') ?? []) {
    if (text === 'help' || text === '?') continue;
    const props = properties(text);
    const id = props.get('id');
    if (props.get('qom-type') !== 'secret' || id === undefined) continue;
    secrets.set(id, secretValue(id, props, secrets));
  }
  return secrets.size === 0 ? {} : { secrets };
}
