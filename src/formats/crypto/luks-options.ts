/**
 * The LUKS create options (qemu's QCryptoBlockCreateOptionsLUKS), shared
 * by the luks driver (`cipher-alg=…`) and qcow2 (`encrypt.cipher-alg=…`):
 * typed, checked in qemu's order with its messages, defaults filled in.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { OptionSpec, OptionValue } from '../../core/options.js';
import { lookupSecretText, type Secrets } from '../../core/secrets.js';
import { cipherAlgValue, CIPHER_MODES, enumValue, essivCipher, HASH_ALGS, IVGEN_ALGS, type HashAlg } from './luks-algs.js';
import { LUKS_DEFAULT_ITER_TIME, type LuksFormat } from './luks-block.js';

/** The specs, without prefix, in qemu's list order (after `size`). */
export const LUKS_OPTION_SPECS: readonly OptionSpec[] = [
  { name: 'key-secret', type: 'string', help: 'ID of the secret that provides the keyslot passphrase' },
  { name: 'cipher-alg', type: 'string', help: 'Name of encryption cipher algorithm' },
  { name: 'cipher-mode', type: 'string', help: 'Name of encryption cipher mode' },
  { name: 'ivgen-alg', type: 'string', help: 'Name of IV generator algorithm' },
  { name: 'ivgen-hash-alg', type: 'string', help: 'Name of IV generator hash algorithm' },
  { name: 'hash-alg', type: 'string', help: 'Name of encryption hash algorithm' },
  { name: 'iter-time', type: 'number', help: 'Time to spend in PBKDF in milliseconds' },
];

/** A new volume's format and passphrase. */
export interface LuksCreate {
  readonly format: LuksFormat;
  readonly password: Uint8Array;
}

/**
 * Reads the options named `prefix + name` (`encrypt.` for qcow2): enum
 * values first (qemu's visitor), then the secret, then the ESSIV cipher.
 */
export function luksCreateOptions(o: ReadonlyMap<string, OptionValue>, secrets: Secrets | undefined, prefix = ''): LuksCreate {
  const s = (name: string): string | undefined => {
    const v = o.get(prefix + name);
    return v === undefined ? undefined : String(v);
  };
  const named = (name: string): string => prefix + name;
  const cipherAlg = s('cipher-alg') === undefined ? 'aes-256' : cipherAlgValue(s('cipher-alg')!, named('cipher-alg'));
  const cipherMode = enumValue(CIPHER_MODES, named('cipher-mode'), s('cipher-mode') ?? 'xts');
  const ivgenAlg = enumValue(IVGEN_ALGS, named('ivgen-alg'), s('ivgen-alg') ?? 'plain64');
  const ivHash = s('ivgen-hash-alg');
  const ivgenHashAlg: HashAlg | undefined = ivHash === undefined ? undefined : enumValue(HASH_ALGS, named('ivgen-hash-alg'), ivHash);
  const hashAlg = enumValue(HASH_ALGS, named('hash-alg'), s('hash-alg') ?? 'sha256');
  const iter = o.get(named('iter-time'));
  const iterTime = typeof iter === 'number' ? iter : LUKS_DEFAULT_ITER_TIME;
  const secret = s('key-secret');
  if (secret === undefined) throw new InvalidArgumentError(`Parameter '${named('key-secret')}' is required for cipher`);
  const password = new TextEncoder().encode(lookupSecretText(secrets, secret));
  if (ivgenAlg === 'essiv') essivCipher(cipherAlg, ivgenHashAlg ?? 'sha256');
  return { format: { cipherAlg, cipherMode, ivgenAlg, ivgenHashAlg, hashAlg, iterTime }, password };
}
