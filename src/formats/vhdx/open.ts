/**
 * Opening a VHDX file: header section, log (replayed on a read-write open,
 * overlaid in memory on a read-only one), region table, metadata, BAT, and
 * the BAT sanity checks qemu applies at open.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';
import type { BackingRef, ByteStore, OpenOptions } from '../driver.js';
import { Bat, batGeometry, checkBatSize, type BatGeometry } from './bat.js';
import { batFindings, type BatScope } from './bat-check.js';
import {
  HEADER1_OFFSET,
  HEADER2_OFFSET,
  HEADER_SIZE,
  METADATA_TABLE_SIZE,
  REGION_TABLE1_OFFSET,
  REGION_TABLE2_OFFSET,
  REGION_TABLE_SIZE,
  randomGuid,
} from './constants.js';
import { hasFileSignature, logIsDirty, selectHeader, type CurrentHeader } from './header.js';
import { updateHeaders } from './header-update.js';
import { findActiveSequence } from './log.js';
import { checkParentLocatorSize, decodeMetadata, parseMetadataTable, type VhdxMetadata } from './metadata.js';
import { parentFilename, parseParentLocator } from './parent-locator.js';
import { parseRegionTable, regionTableValid, type FileRange, type Regions } from './region.js';
import { asQemuOpenFailure, EINVAL } from './open-errno.js';
import { applyReplay, checkReplay, ReplayedStore } from './replay.js';

/** Everything an open image needs. */
export interface VhdxState {
  /** The file. */
  readonly store: ByteStore;
  /** What reads go through: the file, or the file with the log replayed in memory. */
  readonly view: ByteStore;
  readonly filename: string;
  readonly readOnly: boolean;
  current: CurrentHeader;
  readonly regions: Regions;
  readonly meta: VhdxMetadata;
  readonly geometry: BatGeometry;
  readonly bat: Bat;
  readonly virtualSize: number;
  readonly backing: BackingRef | undefined;
  /** FileWriteGuid of this session (set on the first header update). */
  readonly sessionGuid: Uint8Array;
  /** True when a dirty log was replayed in memory only (read-only open). */
  readonly replayedInMemory: boolean;
  /** True when a read/write open replayed a dirty log into the file (check counts it as repaired). */
  readonly replayedOnOpen: boolean;
  /** What `check` validates the BAT against. */
  readonly batScope: BatScope;
}

async function readAt(store: ByteStore, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await store.read(offset, buf);
  return buf;
}

interface LogOutcome {
  view: ByteStore;
  current: CurrentHeader;
  inMemory: boolean;
  /** The log was replayed into the file (read/write open). */
  replayed?: boolean;
}

/** Replays a dirty log: into the file (read-write) or into a read-only overlay. */
async function handleLog(store: ByteStore, current: CurrentHeader, readOnly: boolean, session: Uint8Array): Promise<LogOutcome> {
  const h = current.header;
  if (!logIsDirty(h)) return { view: store, current, inMemory: false };
  if (h.logLength > LIMITS.vhdxMaxLogBytes) {
    throw new UnsupportedError(`VHDX log of ${h.logLength} bytes exceeds vdisk's replay limit of ${LIMITS.vhdxMaxLogBytes} bytes (LIMITS.vhdxMaxLogBytes)`, { offset: h.logOffset });
  }
  const log = await readAt(store, h.logOffset, h.logLength);
  const replay = findActiveSequence(log, h.logGuid, h.logOffset);
  if (!replay) return { view: store, current, inMemory: false };
  const fileSize = await store.size();
  const target = checkReplay(replay, fileSize, h.logOffset);
  if (readOnly) return { view: new ReplayedStore(store, replay, target), current, inMemory: true };
  await applyReplay(store, replay, target);
  const next = await updateHeaders(store, current, { fileWriteGuid: session, newDataWriteGuid: true, logGuid: new Uint8Array(16) });
  return { view: store, current: next, inMemory: false, replayed: true };
}

async function readRegions(view: ByteStore, current: CurrentHeader): Promise<Regions> {
  const h = current.header;
  const reserved: FileRange[] = h.logLength > 0 ? [{ offset: h.logOffset, length: h.logLength }] : [];
  const t1 = await readAt(view, REGION_TABLE1_OFFSET, REGION_TABLE_SIZE);
  if (regionTableValid(t1)) return parseRegionTable(t1, REGION_TABLE1_OFFSET, reserved);
  const t2 = await readAt(view, REGION_TABLE2_OFFSET, REGION_TABLE_SIZE);
  if (regionTableValid(t2)) return parseRegionTable(t2, REGION_TABLE2_OFFSET, reserved);
  throw new CorruptImageError('VHDX has no valid region table', { offset: REGION_TABLE1_OFFSET, errno: EINVAL });
}

async function readMetadata(view: ByteStore, regions: Regions): Promise<{ meta: VhdxMetadata; backing: BackingRef | undefined }> {
  const region = regions.metadata;
  if (region.length < METADATA_TABLE_SIZE) throw new CorruptImageError(`VHDX metadata region of ${region.length} bytes is smaller than its table`, { offset: region.offset });
  const where = parseMetadataTable(await readAt(view, region.offset, METADATA_TABLE_SIZE), region);
  const item = (r: FileRange, n: number): Promise<Uint8Array> => readAt(view, r.offset, n);
  const meta = decodeMetadata(
    {
      fileParameters: await item(where.fileParameters, 8),
      virtualDiskSize: await item(where.virtualDiskSize, 8),
      page83: await item(where.page83, 16),
      logicalSectorSize: await item(where.logicalSectorSize, 4),
      physicalSectorSize: await item(where.physicalSectorSize, 4),
    },
    where,
  );
  if (!meta.hasParent || !where.parentLocator) return { meta, backing: undefined };
  checkParentLocatorSize(where.parentLocator);
  const locator = parseParentLocator(await item(where.parentLocator, where.parentLocator.length), where.parentLocator.offset);
  const filename = parentFilename(locator);
  if (filename === undefined) throw new CorruptImageError('VHDX parent locator has neither relative_path nor absolute_win32_path', { offset: where.parentLocator.offset });
  return { meta, backing: { filename, format: 'vhdx' } };
}

/** The region table and the metadata it locates. */
async function readLayout(view: ByteStore, current: CurrentHeader): Promise<{ regions: Regions; meta: VhdxMetadata; backing: BackingRef | undefined }> {
  const regions = await readRegions(view, current);
  return { regions, ...(await readMetadata(view, regions)) };
}

/** Opens the image on `store`; replays or overlays a dirty log. */
export async function openState(store: ByteStore, options: OpenOptions): Promise<VhdxState> {
  if (!hasFileSignature(await readAt(store, 0, 8))) {
    // vhdx_open fails with a bare EINVAL, worded by the block layer.
    throw asQemuOpenFailure(new CorruptImageError('Not a VHDX image: the file identifier signature is missing', { offset: 0, errno: EINVAL }), options.filename);
  }
  let current = selectHeader(await readAt(store, HEADER1_OFFSET, HEADER_SIZE), await readAt(store, HEADER2_OFFSET, HEADER_SIZE));
  const sessionGuid = randomGuid();
  if (!options.readOnly) await refuseDifferencingWrites(store, current);
  const log = await handleLog(store, current, options.readOnly, sessionGuid);
  current = log.current;
  const view = log.view;
  const { regions, meta, backing } = await readLayout(view, current).catch((err: unknown) => {
    throw asQemuOpenFailure(err, options.filename, options.onWarning);
  });
  const virtualSize = Math.floor(meta.virtualDiskSize / meta.logicalSectorSize) * meta.logicalSectorSize;
  const geometry = batGeometry(virtualSize, meta.blockSize, meta.logicalSectorSize, meta.hasParent);
  const batBytes = checkBatSize(geometry, regions.bat.length, regions.bat.offset);
  const bat = new Bat(await readAt(view, regions.bat.offset, batBytes), regions.bat.offset);
  const h = current.header;
  const tableEntries = regions.entries ?? [regions.bat, regions.metadata];
  const registered = [...tableEntries].reverse().concat({ offset: h.logOffset, length: h.logLength });
  const batScope: BatScope = { bat, geometry, virtualSize, fileSize: await view.size(), regions: registered, hasParent: meta.hasParent };
  // a check open skips this (QEMU's BDRV_O_CHECK): the check reports every finding instead
  if (!options.check) {
    const first = batFindings(batScope).next();
    if (!first.done) {
      // qemu reports the entry through error_report, then fails the open with a bare EINVAL
      const finding = new CorruptImageError(first.value.message, { offset: first.value.offset, errno: EINVAL, data: { report: first.value.message } });
      throw asQemuOpenFailure(finding, options.filename, options.onWarning);
    }
  }
  return {
    batScope,
    store,
    view,
    filename: options.filename,
    readOnly: options.readOnly,
    current,
    regions,
    meta,
    geometry,
    bat,
    virtualSize,
    backing,
    sessionGuid,
    replayedInMemory: log.inMemory,
    replayedOnOpen: log.replayed === true,
  };
}

/** Writing differencing images is not implemented: refuse before anything (even log replay) touches the file. */
async function refuseDifferencingWrites(store: ByteStore, current: CurrentHeader): Promise<void> {
  // The metadata may itself sit behind a dirty log; read it through a throwaway read-only view.
  const probe = await handleLog(store, current, true, randomGuid());
  const { meta } = await readMetadata(probe.view, await readRegions(probe.view, probe.current));
  if (meta.hasParent) throw new UnsupportedError('Writing to differencing VHDX images is not supported; open it read-only');
}
