/**
 * vhdx_open fails most malformed structures with a bare errno and no
 * message; the block layer then words it "Could not open 'F': <strerror>".
 * The parsers throw their own explanation with the errno qemu returns at
 * that point; {@link asQemuOpenFailure} rewords it as qemu-img prints it and
 * keeps the explanation in `data.finding`.
 */
import { CorruptImageError, UnsupportedError, VdiskError } from '../../core/errors.js';
import type { OpenWarning } from '../driver.js';

/** qemu's -EINVAL: a malformed structure. */
export const EINVAL = 22;
/** qemu's -ENOTSUP: a required item or region it does not know. */
export const ENOTSUP = 95;

/**
 * The parser's error as vhdx_open's failure, or `err` itself when it
 * carries no qemu errno. A line qemu reports before failing (`data.report`)
 * goes to `onWarning` first, as qemu's error_report.
 */
export function asQemuOpenFailure(err: unknown, filename: string, onWarning?: (w: OpenWarning) => void): unknown {
  if (!(err instanceof VdiskError) || (err.errno !== EINVAL && err.errno !== ENOTSUP)) return err;
  const report = err.data?.['report'];
  if (typeof report === 'string') onWarning?.({ code: 'error-report', message: report });
  const details = { offset: err.offset, errno: err.errno, data: { ...err.data, finding: err.message } };
  if (err.errno === EINVAL) return new CorruptImageError(`Could not open '${filename}': Invalid argument`, details);
  return new UnsupportedError(`Could not open '${filename}': Operation not supported`, details);
}
