/**
 * Header updates (MS-VHDX 2.2.2.1): the non-current header is rewritten
 * with sequence number + 1 and flushed, then becomes current; doing it
 * twice leaves both headers valid and equal in content. Headers cannot be
 * updated through the log, so this is the only in-place metadata write
 * that is not journaled.
 */
import type { ByteStore } from '../driver.js';
import { HEADER1_OFFSET, HEADER2_OFFSET, randomGuid } from './constants.js';
import { serializeHeader, type CurrentHeader, type VhdxHeader } from './header.js';

/** What a header update changes. */
export interface HeaderChange {
  /** New FileWriteGuid (one per open session). */
  readonly fileWriteGuid: Uint8Array;
  /** Generate a new DataWriteGuid (before the first guest-visible write). */
  readonly newDataWriteGuid?: boolean | undefined;
  /** Set the log GUID (zero GUID = log empty). */
  readonly logGuid?: Uint8Array | undefined;
}

async function updateOnce(store: ByteStore, current: CurrentHeader, change: HeaderChange): Promise<CurrentHeader> {
  const slot: 0 | 1 = current.slot === 0 ? 1 : 0;
  const next: VhdxHeader = {
    ...current.header,
    sequenceNumber: (current.header.sequenceNumber + 1n) & 0xffffffffffffffffn,
    fileWriteGuid: change.fileWriteGuid,
    dataWriteGuid: change.newDataWriteGuid ? randomGuid() : current.header.dataWriteGuid,
    logGuid: change.logGuid ?? current.header.logGuid,
  };
  await store.write(slot === 0 ? HEADER1_OFFSET : HEADER2_OFFSET, serializeHeader(next));
  await store.flush();
  return { header: next, slot };
}

/** Updates both headers (current last); returns the new current header. */
export async function updateHeaders(store: ByteStore, current: CurrentHeader, change: HeaderChange): Promise<CurrentHeader> {
  const first = await updateOnce(store, current, change);
  // The second pass must not mint yet another data GUID: both headers carry the same one.
  return updateOnce(store, first, { ...change, newDataWriteGuid: false, logGuid: first.header.logGuid });
}
