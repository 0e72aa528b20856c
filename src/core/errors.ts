/**
 * The error model: one base class with a stable string `code`, the file and
 * byte offset where the problem sits, and who is at fault. Callers should
 * match on `code` (and `reason` where one code covers several conditions); `instanceof` also works across duplicate installs because
 * the classes are branded with a registry symbol.
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export type ErrorCode =
  | 'EINVAL'
  | 'ENOENT'
  | 'EFORMAT'
  | 'ECORRUPT'
  | 'EUNSUPPORTED'
  | 'EBUSY'
  | 'EABORTED'
  | 'EIO'
  | 'ELOOP'
  | 'EDEPTH'
  | 'EUNSAFE'
  | 'EEXIST'
  | 'EPERM'
  | 'ENOSPC'
  | 'EPOLICY';

/** Who has to act: the caller, the image's author, or the machine. */
export type ErrorFault = 'user' | 'image' | 'environment';

/**
 * A condition callers branch on that `code` alone does not tell apart.
 * The CLI words these as qemu-img does (with its flags), so an SDK message
 * can speak in option names instead.
 */
export type ErrorReason =
  /** A size string that does not parse (`parseSize`, `resize`). */
  | 'size-syntax'
  /** `resize` to a smaller size without `shrink: true`. */
  | 'shrink-refused'
  /** A backing file given without its format where one is required. */
  | 'backing-format-missing'
  /** The format has no internal snapshots. */
  | 'no-snapshots'
  /** `convert`'s `targetIsZero` without `noCreate`. */
  | 'target-is-zero-needs-no-create'
  /** `convert`'s `targetIsZero` into a target with a backing file. */
  | 'target-is-zero-with-backing'
  /** `convert`'s create `options` with `noCreate`. */
  | 'options-with-no-create'
  /** A spill (streams) that would grow past its limit. */
  | 'spill-limit'
  /** A forward-only source that ended before the image did. */
  | 'stream-ended'
  /** A layout a forward-only source cannot be read in within the spill's bound. */
  | 'stream-layout'
  /** `bench`'s `flushInterval` on a read test. */
  | 'flush-interval-needs-write'
  /** A bitmap that cannot be copied because it is inconsistent. */
  | 'broken-bitmap'
  /** A cache mode the file system or the build cannot honour (O_DIRECT). */
  | 'cache-mode-unavailable'
  /** A writable open where image locks cannot be taken. */
  | 'locking-unavailable'
  /** A format outside the ingest policy's `allowedFormats`. */
  | 'format-not-allowed'
  /** A virtual size above the ingest policy's `maxVirtualSize`. */
  | 'virtual-size-limit'
  /** A wrapped (gzip, zstd, bzip2, zip) input inflating past `maxInflatedSize`. */
  | 'inflated-size-limit'
  /** A backing chain deeper than `maxChainDepth`. */
  | 'chain-depth-limit'
  /** A backing file named by URL (or leaving the URL's directory) where the trust mode confines references. */
  | 'network-reference'
  /** LUKS key slots asking for more PBKDF2 iterations than `maxPbkdf2Iterations`. */
  | 'pbkdf2-iterations-limit';

/**
 * The step of a job an error came from, where it changes how the error is
 * worded: `validate` and `create` of a new target's creation,
 * `block-status` of map's allocation queries, `action` of a snapshot
 * action or of rebase's switch to the new backing file (rather than
 * opening the image or copying).
 */
export type ErrorStage = 'validate' | 'create' | 'block-status' | 'action';

/** Extra facts an error carries besides its message. */
export interface ErrorDetails {
  /** The file the error is about. */
  file?: string | undefined;
  /** Byte offset inside `file` where the bad structure sits. */
  offset?: number | undefined;
  /** The underlying error. */
  cause?: unknown;
  /** Facts for people and logs (limits, names); programs branch on `code`, `reason`, `stage`, `errno` and `exitCode`. */
  data?: Record<string, unknown> | undefined;
  /** Extra lines a CLI prints after the message, unprefixed (qemu's error hints). */
  hint?: string | undefined;
  /** The specific condition, when callers need more than `code`. */
  reason?: ErrorReason | undefined;
  /** The job step the error came from. */
  stage?: ErrorStage | undefined;
  /** The POSIX errno qemu reports for this failure (qemu-img prints `-errno (strerror)` in places). */
  errno?: number | undefined;
  /** The exit status qemu-img gives this failure where it is not 1 (`check`, `compare`). */
  exitCode?: number | undefined;
}

const BRAND = Symbol.for('vdisk.error');

/**
 * Base class of every error vdisk throws on purpose.
 *
 * @example
 * ```ts
 * try { await open('disk.qcow2'); }
 * catch (e) { if (e instanceof VdiskError && e.code === 'ENOENT') console.log('no such image'); }
 * ```
 */
export class VdiskError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Who has to act. */
  readonly fault: ErrorFault;
  /** The file concerned, when one is. */
  readonly file: string | undefined;
  /** Byte offset in `file`, when it applies. */
  readonly offset: number | undefined;
  /** Structured extra data. */
  readonly data: Record<string, unknown> | undefined;
  /** Lines a CLI prints after the message (qemu's error hints). */
  readonly hint: string | undefined;
  /** The specific condition, when callers need more than `code`. */
  readonly reason: ErrorReason | undefined;
  /** The job step the error came from. */
  readonly stage: ErrorStage | undefined;
  /** The POSIX errno qemu reports for this failure. */
  readonly errno: number | undefined;
  /** The exit status qemu-img gives this failure, when not 1. */
  readonly exitCode: number | undefined;

  constructor(code: ErrorCode, fault: ErrorFault, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.fault = fault;
    this.file = details.file;
    this.offset = details.offset;
    this.data = details.data;
    this.hint = details.hint;
    this.reason = details.reason;
    this.stage = details.stage;
    this.errno = details.errno;
    this.exitCode = details.exitCode;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The class name (`CorruptImageError`). */
  override get name(): string {
    return this.constructor.name;
  }

  /** Brand check, so errors from another copy of vdisk are recognised. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || !(BRAND in value)) return false;
    // Subclasses keep the ordinary prototype check so `e instanceof CorruptImageError` stays precise.
    return this === VdiskError || Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /**
   * The same kind of error (class, code, fault) under another message: how
   * context is added to an error without losing what it is. `details`
   * replaces the file, offset, data, hint, reason, stage, errno, exit code
   * and cause, which default to this error's own (and this error as the
   * cause).
   */
  rephrase<T extends VdiskError>(this: T, message: string, details: ErrorDetails = {}): T {
    const own: ErrorDetails = { file: this.file, offset: this.offset, data: this.data, hint: this.hint, reason: this.reason, stage: this.stage, errno: this.errno, exitCode: this.exitCode };
    const merged: ErrorDetails = { ...own, cause: this, ...details };
    // Built by the base constructor under the subclass's prototype, so no subclass constructor re-derives the code.
    return Reflect.construct(VdiskError, [this.code, this.fault, message, merged], this.constructor) as T;
  }

  /** A plain object for JSON output and worker boundaries. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      fault: this.fault,
      message: this.message,
      ...(this.file === undefined ? {} : { file: this.file }),
      ...(this.offset === undefined ? {} : { offset: this.offset }),
      ...(this.data === undefined ? {} : { data: this.data }),
      ...(this.reason === undefined ? {} : { reason: this.reason }),
      ...(this.errno === undefined ? {} : { errno: this.errno }),
    };
  }
}

/** A bad argument or option from the caller (EINVAL). */
export class InvalidArgumentError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EINVAL', 'user', message, details);
  }
}

/** A write to an image not opened for writing, or one vdisk refuses to make (EPERM). */
export class PermissionError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EPERM', 'user', message, details);
  }
}

/** A file that does not exist (ENOENT). */
export class NotFoundError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('ENOENT', 'user', message, details);
  }
}

/** A format name nobody knows, or a file no driver recognises (EFORMAT). */
export class UnknownFormatError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EFORMAT', 'user', message, details);
  }
}

/** An image whose structures contradict themselves or the file (ECORRUPT). */
export class CorruptImageError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('ECORRUPT', 'image', message, details);
  }
}

/** A feature or limit vdisk does not handle (EUNSUPPORTED). */
export class UnsupportedError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EUNSUPPORTED', 'user', message, details);
  }
}

/** An image held by someone else (EBUSY). */
export class LockedError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EBUSY', 'environment', message, details);
  }
}

/** A job stopped by its AbortSignal (EABORTED). */
export class AbortError extends VdiskError {
  constructor(message = 'The operation was aborted', details?: ErrorDetails) {
    super('EABORTED', 'user', message, details);
  }
  override get name(): string {
    return 'AbortError';
  }
}

/** An I/O failure from the operating system (EIO); the errno error is the `cause`. */
export class IoError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EIO', 'environment', message, details);
  }
}

/**
 * An external reference (backing file, data file, extent) that the trust
 * mode forbids or that can never be safe to open (EUNSAFE).
 */
export class UnsafeReferenceError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EUNSAFE', 'image', message, details);
  }
}

/**
 * An input the caller's ingest policy refuses (EPOLICY): a format not on
 * its allow-list, a virtual size or an inflated size above its caps.
 */
export class PolicyError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EPOLICY', 'image', message, details);
  }
}

/** A backing chain that loops back on itself (ELOOP). */
export class BackingLoopError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('ELOOP', 'image', message, details);
  }
}

/** A backing chain deeper than the configured cap (EDEPTH). */
export class ChainDepthError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EDEPTH', 'image', message, details);
  }
}

// The class names are the error names (`name`): set here as well, so that they survive a bundler
// that shortens identifiers (the CLI's bundle does, to start faster).
for (const [cls, name] of [
  [VdiskError, 'VdiskError'],
  [InvalidArgumentError, 'InvalidArgumentError'],
  [PermissionError, 'PermissionError'],
  [NotFoundError, 'NotFoundError'],
  [UnknownFormatError, 'UnknownFormatError'],
  [CorruptImageError, 'CorruptImageError'],
  [UnsupportedError, 'UnsupportedError'],
  [LockedError, 'LockedError'],
  [AbortError, 'AbortError'],
  [IoError, 'IoError'],
  [UnsafeReferenceError, 'UnsafeReferenceError'],
  [PolicyError, 'PolicyError'],
  [BackingLoopError, 'BackingLoopError'],
  [ChainDepthError, 'ChainDepthError'],
] as const) {
  Object.defineProperty(cls, 'name', { value: name, configurable: true });
}

/** True when `value` is a vdisk error (from any copy of the package). */
export function isVdiskError(value: unknown): value is VdiskError {
  return value instanceof VdiskError;
}
