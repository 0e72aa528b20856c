/**
 * What this process can do beyond portable Node. Everything listed comes
 * from the optional native module: Node 20's `fs` has no fcntl/flock, no
 * O_DIRECT buffers, no SEEK_DATA and no copy_file_range, so without the
 * module vdisk falls back to portable code, and refuses writable opens
 * unless the caller gives up image locking (`locking: false`, the CLI's
 * `--no-lock`). A service can check this at startup instead of at its
 * first open.
 */
import { native, nativeStatus, type NativeStatus } from './native.js';

/** What {@link capabilities} reports. */
export interface Capabilities {
  /** The native module is loaded. */
  readonly native: boolean;
  /**
   * Why it is or is not: `loaded`, `disabled` (VDISK_NO_NATIVE is set),
   * `unsupported-platform` (not Linux), `not-built` (installed without a
   * compiler or with --ignore-scripts), `load-failed` (see `nativeError`).
   */
  readonly nativeStatus: NativeStatus;
  /** The loader's message when `nativeStatus` is `load-failed`. */
  readonly nativeError?: string | undefined;
  /**
   * qemu-compatible image locks (OFD byte-range locks), so vdisk and QEMU
   * see each other's opens. Without them a writable open of an existing
   * file fails unless locking is turned off for it.
   */
  readonly locking: boolean;
  /** O_DIRECT, for the cache modes `none` and `directsync`. */
  readonly directIo: boolean;
  /** In-kernel copies (copy_file_range) for convert's `copyOffload` (`-C`). */
  readonly copyOffload: boolean;
  /** Holes found without reading them (SEEK_DATA/SEEK_HOLE). */
  readonly holeDetection: boolean;
  /** fallocate: `falloc` preallocation, zeroing and hole punching without writing zeros. */
  readonly fallocate: boolean;
}

/** What this process supports; see {@link Capabilities}. */
export function capabilities(): Capabilities {
  const has = native !== undefined;
  return {
    native: has,
    nativeStatus: nativeStatus.status,
    ...(nativeStatus.error !== undefined ? { nativeError: nativeStatus.error } : {}),
    locking: has,
    directIo: has,
    copyOffload: has,
    holeDetection: has,
    fallocate: has,
  };
}
