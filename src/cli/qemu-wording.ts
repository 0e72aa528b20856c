/**
 * qemu-img states some refusals in its command-line flags ("--target-is-zero
 * requires use of -n flag"). The SDK states them in its option names and
 * marks them with a typed `reason`; the CLI prints them in qemu-img's words.
 */
import type { ErrorReason, VdiskError } from '../core/errors.js';

const MESSAGES: Partial<Record<ErrorReason, string>> = {
  'shrink-refused': 'Use the --shrink option to perform a shrink operation.',
  'target-is-zero-needs-no-create': '--target-is-zero requires use of -n flag',
  'target-is-zero-with-backing': 'Cannot use --target-is-zero when the destination image has a backing file',
  'options-with-no-create': '-o has no effect when skipping image creation',
  'flush-interval-needs-write': '--flush-interval is only available in write tests',
};

const HINTS: Partial<Record<ErrorReason, string>> = {
  'broken-bitmap': "Try --skip-broken-bitmaps, or use 'vdisk bitmap --remove' to delete it",
  'locking-unavailable': 'Write without image locks only if nothing else can use the image: --no-lock (API: locking: false, or file.locking=off).',
};

/** The limits: the SDK names the option, the CLI adds its flag. */
const LIMIT_FLAGS: Partial<Record<ErrorReason, readonly [option: string, flag: string]>> = {
  'chain-depth-limit': ['maxChainDepth', '--max-chain-depth'],
  'virtual-size-limit': ['maxVirtualSize', '--max-virtual-size'],
  'inflated-size-limit': ['maxInflatedSize', '--max-inflated-size'],
  'pbkdf2-iterations-limit': ['maxPbkdf2Iterations', '--max-pbkdf2-iterations'],
};

/** The message and hint the CLI prints for `err`. */
export function cliWording(err: VdiskError): { message: string; hint: string | undefined } {
  const reason = err.reason;
  if (reason === undefined) return { message: err.message, hint: err.hint };
  const limit = LIMIT_FLAGS[reason];
  const message = limit ? err.message.replace(`(${limit[0]})`, `(${limit[0]}, ${limit[1]})`) : (MESSAGES[reason] ?? err.message);
  return { message, hint: HINTS[reason] ?? err.hint };
}
