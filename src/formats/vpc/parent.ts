/**
 * Parent locators of differencing VHDs (disk type 4): which one names the
 * backing file, and how its bytes decode. Pure functions.
 *
 * vdisk prefers the relative locator (`W2ru`), as Hyper-V and Virtual PC do
 * when they open a differencing disk: it keeps working when a disk and its
 * parent are moved or copied together. Then the absolute one (`W2ku`), the
 * Mac ones (`MacX` file URL, old `Mac `), the deprecated `Wi2r`/`Wi2k`, and
 * last the parent name stored in the dynamic header. Windows separators
 * become `/` and a leading `.\` is dropped, so `.\base.vhd` names
 * `base.vhd` beside the child.
 */
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { decodeUtf16Le, type ParentLocator } from './dynamic-header.js';

const PREFERENCE = ['W2ru', 'W2ku', 'MacX', 'Mac ', 'Wi2r', 'Wi2k'];

/** The locator vdisk follows, or undefined when none has a known platform and data. */
export function chooseLocator(locators: readonly ParentLocator[]): ParentLocator | undefined {
  for (const platform of PREFERENCE) {
    const found = locators.find((l) => l.platform === platform && l.dataLength > 0);
    if (found) return found;
  }
  return undefined;
}

/**
 * Checks that a locator's data lies in the file and is small enough to read.
 *
 * @throws {CorruptImageError} data outside the file or longer than LIMITS.vpcMaxLocatorBytes
 */
export function checkLocator(l: ParentLocator, fileSize: number): void {
  if (l.dataLength > LIMITS.vpcMaxLocatorBytes) {
    throw new CorruptImageError(`VHD parent locator '${l.platform}' is ${l.dataLength} bytes long, more than the ${LIMITS.vpcMaxLocatorBytes} bytes a path can need`, { offset: l.dataOffset });
  }
  if (l.dataOffset + l.dataLength > fileSize) {
    throw new CorruptImageError(`VHD parent locator '${l.platform}' data at offset ${l.dataOffset} (${l.dataLength} bytes) lies beyond the end of the file (${fileSize} bytes)`, {
      offset: l.dataOffset,
    });
  }
}

/** Turns a Windows path into the `/`-separated name vdisk resolves. */
export function normalizeWindowsPath(path: string): string {
  let p = path.replaceAll('\\', '/');
  while (p.startsWith('./')) p = p.slice(2);
  return p;
}

/** Decodes a locator's data into a path. */
export function decodeLocator(platform: string, data: Uint8Array): string {
  switch (platform) {
    case 'W2ru':
    case 'W2ku':
      return normalizeWindowsPath(decodeUtf16Le(data));
    case 'MacX': {
      const url = Buffer.from(data).toString('utf8').replace(/\0.*$/s, '');
      const m = /^file:\/\/(?:localhost)?(\/.*)$/.exec(url);
      if (!m) return url;
      try {
        return decodeURIComponent(m[1] as string);
      } catch {
        return m[1] as string;
      }
    }
    default:
      return normalizeWindowsPath(Buffer.from(data).toString('latin1').replace(/\0.*$/s, ''));
  }
}
