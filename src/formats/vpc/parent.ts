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
import { decodeName, encodeName } from '../../core/byte-names.js';
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

/** A locator's bytes up to the first NUL, as a name (bytes that are not UTF-8 kept: core/byte-names.ts). */
function untilNul(data: Uint8Array): string {
  const nul = data.indexOf(0);
  return decodeName(data.subarray(0, nul < 0 ? data.length : nul));
}

/** A file URL's path with its `%XX` escapes turned back into the bytes they stand for. */
function percentDecode(path: string): string {
  const bytes = encodeName(path);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 ? bytes.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(bytes[i] as number);
  }
  return decodeName(Uint8Array.from(out));
}

/** Decodes a locator's data into a path. */
export function decodeLocator(platform: string, data: Uint8Array): string {
  switch (platform) {
    case 'W2ru':
    case 'W2ku':
      return normalizeWindowsPath(decodeUtf16Le(data));
    case 'MacX': {
      const url = untilNul(data);
      const m = /^file:\/\/(?:localhost)?(\/.*)$/.exec(url);
      return m ? percentDecode(m[1] as string) : url;
    }
    default:
      return normalizeWindowsPath(untilNul(data));
  }
}
