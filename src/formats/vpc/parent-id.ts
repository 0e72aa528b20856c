/**
 * The parent check of differencing VHDs. The VHD spec ("Dynamic Disk
 * Header Format", Parent Unique ID) records in the child the unique ID of
 * its parent's footer; a parent whose footer carries another ID is not the
 * disk the child was made from (it was replaced, recreated, or the locator
 * now names a different file), and reading through to it would mix
 * unrelated data. Hyper-V refuses such a chain, libvhdi fails with
 * "mismatch in identifier".
 *
 * vdisk treats a mismatch as a CorruptImageError, as its vmdk driver treats
 * a parentCID that differs from the parent's CID (formats/vmdk/cid.ts). As
 * there, the check runs when the child first needs its parent (a read or
 * block status falling through, a copy-on-write fill) and only when the
 * block layer attached a backing reader; opening with `backing: false` or
 * running `info` does not touch the parent. The parent is opened read-only
 * through the block layer's resolver (`OpenOptions.external`), so the trust
 * mode applies to it exactly as to the backing file itself. The parent time
 * stamp is not compared: Hyper-V and libvhdi do not require it either.
 * QEMU (7.2) ignores the parent of a differencing VHD entirely.
 */
import { CorruptImageError } from '../../core/errors.js';
import type { ExternalFiles } from '../driver.js';
import { findFooter } from './open.js';

/** Formats a 16-byte unique ID as the UUID text VHD tools show. */
function formatUniqueId(id: Uint8Array): string {
  const h = Buffer.from(id.buffer, id.byteOffset, id.length).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/** Opens the parent named `name` through the resolver and reads its footer's unique ID. */
async function readParentUniqueId(external: ExternalFiles, name: string): Promise<Uint8Array> {
  const store = await external.open(name, 'extent', { readOnly: true, unlocked: true });
  try {
    return (await findFooter(store, await store.size())).footer.uniqueId;
  } finally {
    await store.close();
  }
}

/**
 * Checks that the parent `name` still has the unique ID `file` records
 * (`expected`, read from the dynamic header field at byte `recordedAt`).
 *
 * @throws {CorruptImageError} the parent cannot be read as a VHD, or its unique ID differs
 */
export async function checkParentUniqueId(external: ExternalFiles, name: string, expected: Uint8Array, recordedAt: number, file: string): Promise<void> {
  let actual: Uint8Array;
  try {
    actual = await readParentUniqueId(external, name);
  } catch (err) {
    throw new CorruptImageError(`Could not read the unique ID of parent '${name}' of differencing VHD '${file}'`, { file, cause: err });
  }
  if (!sameId(actual, expected)) {
    throw new CorruptImageError(
      `Parent '${name}' has unique ID ${formatUniqueId(actual)}, but differencing VHD '${file}' records parent unique ID ${formatUniqueId(expected)} (at offset ${recordedAt}): the parent is not the disk the child was made from`,
      { file, offset: recordedAt },
    );
  }
}
