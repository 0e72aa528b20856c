/**
 * What a format can do, derived from the hooks its driver record and an
 * open image implement, so the answer cannot drift from the code (a
 * declared capability record was read nowhere and said qcow2 had no
 * snapshots). Jobs still test the hook they call; this is the summary for
 * callers who want to know before they start.
 */
import type { FormatDriver } from './format.js';
import type { FormatImage } from './image.js';

/**
 * Capabilities of a format. The first group comes from the driver record;
 * the second only from an open image (`undefined` without one), and says
 * what that open can do: a read-only open of qcow2 can neither resize nor
 * amend.
 */
export interface FormatCapabilities {
  /** `create` makes new images. */
  readonly create: boolean;
  /** New images can record a backing file (a `backing_file` create option). */
  readonly backing: boolean;
  /** `measure` estimates the size of new images. */
  readonly measure: boolean;
  /** Images can be written: not a read-only format, and with an image, it was opened read/write. */
  readonly write: boolean;
  /** `amend` changes options: the format has amend options, and with an image, this open can apply them. */
  readonly amend: boolean;
  /** Whole units can be written compressed (`convert -c`). */
  readonly compress: boolean | undefined;
  /** The virtual size can change (`resize`). */
  readonly resize: boolean | undefined;
  /** Internal snapshots can be listed (and, on a read/write open, created, applied and deleted). */
  readonly snapshots: boolean | undefined;
  /** Consistency can be checked (`check`). */
  readonly check: boolean | undefined;
  /** A check can repair (`check -r`). */
  readonly repair: boolean | undefined;
  /** Persistent dirty bitmaps can be stored (qcow2 v3). */
  readonly bitmaps: boolean | undefined;
}

/**
 * The capabilities of `driver`, and of `image` (opened by that driver)
 * when given.
 *
 * @example
 * ```ts
 * const qcow2 = defaultRegistry.find('qcow2');
 * const dmg = defaultRegistry.find('dmg');
 * if (qcow2 && dmg) {
 *   console.log(capabilitiesOf(qcow2).create, capabilitiesOf(dmg).write); // true false
 * }
 * ```
 */
export function capabilitiesOf(driver: FormatDriver, image?: FormatImage): FormatCapabilities {
  const writable = driver.readOnly !== true && driver.recognisedOnly !== true;
  const statics = {
    create: driver.create !== undefined,
    backing: driver.createOptions.some((o) => o.name === 'backing_file'),
    measure: driver.measure !== undefined,
  };
  if (!image) {
    const unknown = { compress: undefined, resize: undefined, snapshots: undefined, check: undefined, repair: undefined, bitmaps: undefined };
    return { ...statics, write: writable, amend: driver.amendOptions !== undefined, ...unknown };
  }
  const writer = image.writer;
  return {
    ...statics,
    write: writable && writer !== undefined,
    amend: image.amender !== undefined,
    compress: writer?.writeCompressed !== undefined,
    resize: image.resizer !== undefined,
    snapshots: image.snapshots !== undefined,
    check: image.checker !== undefined,
    repair: image.checker?.canRepair === true,
    bitmaps: image.bitmaps?.supported === true,
  };
}
