/**
 * The error model: one base class with a stable string `code`, the file and
 * byte offset where the problem sits, and who is at fault. Callers should
 * match on `code`; `instanceof` also works across duplicate installs because
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

/** Extra facts an error carries besides its message. */
export interface ErrorDetails {
  /** The file the error is about. */
  file?: string | undefined;
  /** Byte offset inside `file` where the bad structure sits. */
  offset?: number | undefined;
  /** The underlying error. */
  cause?: unknown;
  /** Free-form structured data (for example what happened to a job's target). */
  data?: Record<string, unknown> | undefined;
  /** Extra lines a CLI prints after the message, unprefixed (qemu's error hints). */
  hint?: string | undefined;
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

  constructor(code: ErrorCode, fault: ErrorFault, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.fault = fault;
    this.file = details.file;
    this.offset = details.offset;
    this.data = details.data;
    this.hint = details.hint;
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
   * replaces the file, offset, data, hint and cause, which default to this
   * error's own (and this error as the cause).
   */
  rephrase<T extends VdiskError>(this: T, message: string, details: ErrorDetails = {}): T {
    const merged: ErrorDetails = { file: this.file, offset: this.offset, data: this.data, hint: this.hint, cause: this, ...details };
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
    };
  }
}

/** A bad argument or option from the caller (EINVAL). */
export class InvalidArgumentError extends VdiskError {
  constructor(message: string, details?: ErrorDetails) {
    super('EINVAL', 'user', message, details);
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

/** True when `value` is a vdisk error (from any copy of the package). */
export function isVdiskError(value: unknown): value is VdiskError {
  return value instanceof VdiskError;
}
