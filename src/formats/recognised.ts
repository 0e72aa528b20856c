/**
 * Formats vdisk recognises by their signature but cannot open yet. Each is
 * a probe-only driver record: probing picks it over raw (so such a file is
 * never read, converted or resized as raw), opening it fails with
 * UnsupportedError, and it cannot create images. A later full driver
 * replaces its record in the built-in list; `-f raw` still reads the file
 * as raw, as in qemu.
 */
import { UnsupportedError } from '../core/errors.js';
import type { FormatDriver } from './driver.js';

const NOTHING = {
  create: false,
  write: false,
  backing: false,
  snapshots: false,
  compress: false,
  check: false,
  resize: false,
  amend: false,
  bitmaps: false,
} as const;

/** A driver record that only recognises `name` by `probe`. */
export function recognisedOnly(name: string, probe: FormatDriver['probe']): FormatDriver {
  return {
    name,
    recognisedOnly: true,
    capabilities: NOTHING,
    createOptions: [],
    probe,
    open: () =>
      Promise.reject(new UnsupportedError(`Image format '${name}' is not supported by vdisk yet`, { data: { format: name } })),
  };
}

/**
 * The recognised-only formats. Order matters for equal scores as in qemu's
 * driver list: a cloop preamble in a file named `*.dmg` probes as dmg.
 */
export const recognisedDrivers: readonly FormatDriver[] = [
];
