import { parseSize } from '../core/sizes.js';
import type { TrustMode } from '../block/resolver.js';
import { last, type OptSpec, type ParsedArgs } from './args.js';
import { InvalidArgumentError } from '../core/errors.js';

/** vdisk-only options every command that opens images accepts. */
export const TRUST_OPTIONS: readonly OptSpec[] = [
  { key: 'untrusted', long: ['untrusted'] },
  { key: 'trust', long: ['trust'], arg: true },
  { key: 'maxChainDepth', long: ['max-chain-depth'], arg: true },
  // Writes without image locks where the process cannot take them (no native module; see capabilities()).
  { key: 'noLock', long: ['no-lock'] },
];

/**
 * The resolver and locking settings these options ask for. Like qemu-img,
 * the CLI opens backing files named by URL (under trust `qemu` only) and
 * devices named on its command line.
 */
export function trustFrom(args: ParsedArgs): { trust: TrustMode; allowUrls: true; allowDevices: true; maxChainDepth?: number; locking?: false } {
  const locking = args.flags.has('noLock') ? { locking: false as const } : {};
  let trust: TrustMode = args.flags.has('untrusted') ? 'untrusted' : 'qemu';
  const t = last(args, 'trust');
  if (t !== undefined) {
    if (t !== 'qemu' && t !== 'untrusted' && t !== 'none') throw new InvalidArgumentError(`Invalid trust mode '${t}' (expecting qemu, untrusted or none)`);
    trust = t;
  }
  // Devices named on the command line open as qemu-img opens them (host_device); the resolver still refuses them as references.
  const base = { trust, allowUrls: true as const, allowDevices: true as const, ...locking };
  const depth = last(args, 'maxChainDepth');
  return depth === undefined ? base : { ...base, maxChainDepth: parseSize(depth, 'chain depth') };
}
