import { InvalidArgumentError, VdiskError } from '../core/errors.js';
import { parseSize } from '../core/sizes.js';
import { HelpRequest, UsageError } from './args.js';
import { ObjectHelpRequest } from './objects.js';
import { cliWording } from './qemu-wording.js';

/** Where a command writes; the real CLI binds these to the process streams. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * Resolves once stdout can take more (its buffer drained, or the stream
   * ended). Commands that print without bound await it between writes so a
   * slow reader holds their memory flat; without it, writes just queue.
   */
  drain?(): Promise<void>;
  /** The same for stderr. */
  drainStderr?(): Promise<void>;
}

/** A subcommand: words after its name → exit status. */
export type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

/** The program name used in messages. */
export const PROG = 'vdisk';

/** Prints an error the way qemu-img does (`prog: message`, hints unprefixed) and returns the exit status. */
export function reportError(io: CliIo, err: unknown, prefix = ''): number {
  // The dispatcher prints the help (it loads the format list): through the command's own catch.
  if (err instanceof HelpRequest) throw err;
  if (err instanceof ObjectHelpRequest) {
    io.stdout(err.text);
    return 0;
  }
  if (err instanceof UsageError) {
    io.stderr(`${PROG}: ${err.message}\nTry '${PROG} --help' for more information\n`);
    return 1;
  }
  if (prefix === '' && reportSizeSyntax(io, err)) return 1;
  if (err instanceof VdiskError) {
    const { message, hint } = cliWording(err);
    io.stderr(`${PROG}: ${prefix}${message}\n`);
    if (hint) io.stderr(`${hint}\n`);
    return 1;
  }
  // Not ours: still no stack trace for users, but say it is unexpected.
  const msg = err instanceof Error ? err.message : String(err);
  io.stderr(`${PROG}: internal error: ${msg}\n`);
  if (process.env['VDISK_DEBUG'] && err instanceof Error && err.stack) io.stderr(err.stack + '\n');
  return 1;
}

/** `--output` as qemu-img validates it. */
export function outputFormat(value: string | undefined): 'human' | 'json' {
  if (value === undefined || value === 'human') return 'human';
  if (value === 'json') return 'json';
  throw new InvalidArgumentError('--output must be used with human or json as argument.');
}

/** qemu-img's cvtnum: a size given on the command line, or undefined once its error (two lines for bad syntax) is printed. */
export function cvtnum(io: CliIo, what: string, value: string): number | undefined {
  try {
    return parseSize(value, what);
  } catch (err) {
    reportError(io, err);
    return undefined;
  }
}

/** Prints cvtnum's two lines for a size that does not parse (reason `size-syntax`); false for any other error. */
function reportSizeSyntax(io: CliIo, err: unknown): boolean {
  if (!(err instanceof VdiskError && err.reason === 'size-syntax')) return false;
  // parseSize names the value in `data.what`; other size-syntax errors (resize's) carry their own text.
  const named = err.data?.['what'];
  if (typeof named !== 'string') return false;
  io.stderr(`${PROG}: Invalid ${named} specified. You may use k, M, G, T, P or E suffixes for\n${PROG}: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n`);
  return true;
}

/** The cache modes qemu-img accepts for -t (`target`) and -T (`source`), refused in its words. */
export function checkCacheMode(mode: string | undefined, which: 'target' | 'source' = 'target'): void {
  if (mode === undefined) return;
  if (!['none', 'writeback', 'writethrough', 'directsync', 'unsafe', 'off'].includes(mode)) {
    throw new InvalidArgumentError(`Invalid ${which === 'source' ? 'source cache' : 'cache'} option: ${mode}`);
  }
}

/**
 * Prints open warnings to stderr as qemu-img does: warn_report's lines
 * (`warn-report`, "program: warning: "), the probed-raw WARNING
 * and the lines of a dirty image's repair as they are, repair errors with
 * the program name, and the stale-bitmaps warning with its second line
 * (which qemu ends without a newline).
 */
export function warningPrinter(io: CliIo): (w: { code: string; message: string }) => void {
  return (w) => {
    if (w.code === 'bitmaps-inconsistent') {
      io.stderr(`${PROG}: warning: ${w.message}\nSome clusters may be leaked, run '${PROG} check -r' on the image file to fix.`);
    } else if (w.code === 'warn-report') {
      io.stderr(`${PROG}: warning: ${w.message}\n`);
    } else {
      io.stderr(`${w.code === 'repair-report' || w.code === 'error-report' ? `${PROG}: ` : ''}${w.message}\n`);
    }
  };
}
