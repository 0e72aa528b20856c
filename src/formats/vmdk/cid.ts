/**
 * Content IDs: a child records its parent's CID (parentCID) and reads
 * through to the parent only while they match; every open that writes
 * gives the image a new CID (QEMU's vmdk_write_cid), so stale children are
 * detected.
 */
import { encodeName } from '../../core/byte-names.js';
import { CorruptImageError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import { randomBytes } from '../../core/random.js';
import type { ByteStore, ExternalFiles } from '../driver.js';
import { descriptorText, parseDescriptor, replaceCid } from './descriptor.js';
import { parseVmdk4Header, sparseMagic } from './header.js';
import { SECTOR, VMDK4_MAGIC } from './layout.js';
import type { DescriptorPlace } from './open.js';

/** A random CID (QEMU's g_random_int). */
export function randomCid(): number {
  return randomBytes(4).readUInt32LE(0);
}

/** Reads the CID a VMDK file's descriptor records, or undefined when it has none. */
async function readCidOf(store: ByteStore): Promise<number | undefined> {
  const size = await store.size();
  const head = new Uint8Array(Math.min(size, SECTOR));
  await store.read(0, head);
  let offset = 0;
  let length = Math.min(size, LIMITS.vmdkMaxDescriptorBytes);
  if (sparseMagic(head) === VMDK4_MAGIC) {
    const h = parseVmdk4Header(head, store.name);
    offset = h.descOffset ? h.descOffset * SECTOR : SECTOR;
    length = Math.min(h.descSize ? h.descSize * SECTOR : 20 * SECTOR, LIMITS.vmdkMaxDescriptorBytes);
  }
  const bytes = new Uint8Array(length);
  await store.read(offset, bytes);
  return parseDescriptor(descriptorText(bytes), store.name).cid;
}

/** Opens the parent named `name` through the resolver and reads its CID. */
export async function readParentCid(external: ExternalFiles, name: string): Promise<number | undefined> {
  const store = await external.open(name, 'extent', { readOnly: true, unlocked: true });
  try {
    return await readCidOf(store);
  } finally {
    await store.close();
  }
}

/** Checks that the parent still has the CID the child recorded. */
export async function checkParentCid(external: ExternalFiles, name: string, parentCid: number, file: string): Promise<void> {
  let cid: number | undefined;
  try {
    cid = await readParentCid(external, name);
  } catch (err) {
    throw new CorruptImageError(`Could not read the CID of parent '${name}' of '${file}'`, { file, cause: err });
  }
  if (cid !== parentCid) {
    throw new CorruptImageError(
      `Parent '${name}' has CID ${cid === undefined ? 'none' : cid.toString(16)}, but '${file}' records parentCID ${parentCid.toString(16)}: the parent changed after the child was made`,
      { file },
    );
  }
}

/** Rewrites the CID in the descriptor, keeping every other byte. Returns the new CID. */
export async function writeCid(place: DescriptorPlace, cid: number): Promise<void> {
  const size = place.embedded ? place.capacity : Math.min(await place.store.size(), place.capacity);
  const bytes = new Uint8Array(size);
  await place.store.read(place.offset, bytes);
  const text = descriptorText(bytes);
  const next = encodeName(replaceCid(text, cid));
  if (place.embedded) {
    if (next.length > place.capacity) return; // no room: keep the old CID rather than clobber data
    const out = new Uint8Array(Math.max(next.length, encodeName(text).length));
    out.set(next);
    await place.store.write(place.offset, out);
  } else {
    // qemu rewrites a descriptor file in whole sectors, NUL-padded (a 337-byte file becomes 512 bytes).
    const out = new Uint8Array(Math.ceil(Math.max(next.length, 1) / 512) * 512);
    out.set(next);
    await place.store.write(0, out);
    await place.store.truncate(out.length);
  }
}
