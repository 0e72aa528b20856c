/**
 * qcow2: QEMU's copy-on-write format, after docs/interop/qcow2.rst (the
 * bdrv_qcow2 analog). This file wires the parts together and nothing else.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { createQcow2, QCOW2_CREATE_OPTIONS } from './create.js';
import { QCOW2_AMEND_OPTIONS } from './amend.js';
import { Qcow2Image } from './image.js';
import { Qcow2Checker, repairDirtyImage } from './check.js';
import { INCOMPAT_DIRTY, QCOW2_MAGIC } from './layout.js';
import { readForwardQcow2 } from './forward.js';
import { measureQcow2 } from './measure.js';
import { openState } from './open.js';
import { checkQcow2RuntimeOptions, passDiscardSnapshot, QCOW2_RUNTIME_OPTIONS } from './runtime-options.js';
import { createWriter, updateHeaderOnOpen } from './writer-open.js';
import { Qcow2Bitmaps, withBitmaps } from './bitmap-ops.js';
import { qcow2StreamWriter } from './stream.js';

export { Qcow2Image } from './image.js';

async function open(store: ByteStore, options: OpenOptions): Promise<FormatImage> {
  const state = await openState(store, options);
  const { header, g } = state;
  const facts = { version: header.version, clusterSize: g.clusterSize, l2EntrySize: g.l2EntrySize, virtualSize: state.virtualSize, cryptMethod: header.cryptMethod };
  checkQcow2RuntimeOptions(options.runtime ?? [], facts);
  state.discardSnapshot = passDiscardSnapshot(options.runtime ?? []);
  const image = new Qcow2Image(state);
  image.checker = new Qcow2Checker(state);
  // Persistent bitmaps: writable opens mark them in_use and record writes.
  const bitmaps = new Qcow2Bitmaps(state, !options.readOnly && !options.check, options.onWarning);
  image.bitmaps = bitmaps;
  if (!options.readOnly) {
    try {
      await updateHeaderOnOpen(state);
      if (!options.check) {
        if (state.header.incompatible & BigInt(INCOMPAT_DIRTY)) await repairDirtyImage(state, options.onWarning);
        await image.enableWrites(async (st) => {
          const writer = await createWriter(st);
          await bitmaps.attach();
          return withBitmaps(writer, bitmaps);
        });
      }
    } catch (err) {
      await Promise.allSettled(state.ownedStores.map((s) => s.close()));
      throw err;
    }
  }
  return image;
}

/**
 * Score for the first bytes of a file: magic `QFI\xfb` with version 2 or
 * later, as QEMU's qcow2_probe (version 1 is qcow; versions past 3 are
 * qcow2 that open then refuses by version).
 */
function probe(head: Uint8Array): number {
  if (head.length < 8) return 0;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (v.getUint32(0) !== QCOW2_MAGIC) return 0;
  return v.getUint32(4) >= 2 ? 100 : 0;
}

/**
 * Opens internal snapshot `idOrName` of an open qcow2 image read-only (for
 * `convert -l`). The view shares the image's file; close it before the image.
 *
 * @throws {InvalidArgumentError} when `image` is not qcow2
 */
export async function openQcow2Snapshot(image: FormatImage, idOrName: string): Promise<FormatImage> {
  if (!(image instanceof Qcow2Image)) throw new InvalidArgumentError(`Image '${image.store.name}' is not qcow2; it has no internal snapshots`);
  return image.openSnapshot(idOrName);
}

/** The qcow2 format driver. */
export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  createOptions: QCOW2_CREATE_OPTIONS,
  probe,
  runtimeOptions: QCOW2_RUNTIME_OPTIONS,
  open,
  create: createQcow2,
  createsExtraFiles: (options) => options.has('data_file'),
  amendOptions: QCOW2_AMEND_OPTIONS, // amend.ts
  measure: measureQcow2,
  streamWriter: qcow2StreamWriter,
  readForward: readForwardQcow2, // forward.ts
};
