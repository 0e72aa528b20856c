/**
 * Secrets by id: the keys and passphrases that encrypted formats (luks,
 * qcow2 `encrypt.*`, qcow `encrypt.format=aes`) name through a
 * `key-secret` option, as qemu's `--object secret,id=ID,...` objects
 * provide them. The SDK takes them as a plain object or map; the CLI
 * builds one from its `--object` options (cli/objects.ts). Nothing here
 * reads files or logs a value.
 */
import { InvalidArgumentError } from './errors.js';

/** Secrets by id; a string is its UTF-8 bytes. */
export type Secrets = ReadonlyMap<string, Uint8Array | string> | Readonly<Record<string, Uint8Array | string>>;

/** The options that carry secrets to an open or a create. */
export interface SecretOptions {
  /**
   * Secrets the images' `key-secret` options name (qemu's `--object
   * secret,...`): `{ sec0: 'passphrase' }` or a map of raw bytes.
   */
  readonly secrets?: Secrets | undefined;
  /**
   * Largest PBKDF2 iteration count an encrypted image (LUKS keyslot or
   * master-key digest) may ask for before its key is derived; default
   * 2^24. QEMU derives whatever the header asks, so a hostile header could
   * keep an open busy for hours; above the cap the open fails with
   * PolicyError (EPOLICY).
   */
  readonly maxPbkdf2Iterations?: number | undefined;
}

const utf8 = new TextEncoder();

function rawSecret(secrets: Secrets | undefined, id: string): Uint8Array | string | undefined {
  if (secrets === undefined) return undefined;
  if (secrets instanceof Map) return (secrets as ReadonlyMap<string, Uint8Array | string>).get(id);
  const record = secrets as Readonly<Record<string, Uint8Array | string>>;
  return Object.prototype.hasOwnProperty.call(record, id) ? record[id] : undefined;
}

/**
 * The bytes of secret `id` (qcrypto_secret_lookup).
 *
 * @throws {InvalidArgumentError} `No secret with id 'ID'` when there is none
 */
export function lookupSecret(secrets: Secrets | undefined, id: string): Uint8Array {
  const value = rawSecret(secrets, id);
  if (value === undefined) throw new InvalidArgumentError(`No secret with id '${id}'`, { data: { secret: id } });
  return typeof value === 'string' ? utf8.encode(value) : value;
}

/**
 * Secret `id` as text (qcrypto_secret_lookup_as_utf8: passphrases are
 * text to qemu, so bytes that are not UTF-8 are refused rather than
 * guessed at).
 *
 * @throws {InvalidArgumentError} when there is no such secret or it is not valid UTF-8
 */
export function lookupSecretText(secrets: Secrets | undefined, id: string): string {
  const value = rawSecret(secrets, id);
  if (typeof value === 'string') return value;
  const bytes = lookupSecret(secrets, id);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidArgumentError(`Data from secret ${id} is not valid UTF-8`, { data: { secret: id } });
  }
}
