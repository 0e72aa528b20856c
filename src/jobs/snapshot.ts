/**
 * snapshot: list, create, apply or delete internal snapshots (qcow2), as
 * `qemu-img snapshot` does. The image is opened with its backing chain,
 * read-only for `list` and for writing otherwise; every change is written
 * in the format's crash-safe order and flushed before this resolves.
 */
import { decodeName, encodeName } from '../core/byte-names.js';
import { LockedError, NotFoundError, UnsupportedError, VdiskError } from '../core/errors.js';
import { Job, type JobContext, type JobOptions } from '../core/job.js';
import { probedRawWarning } from '../block/chain.js';
import { BlockDevice } from '../block/device.js';
import type { ImageTarget, OpenImageOptions } from '../block/chain.js';
import type { DriverRegistry } from '../block/registry.js';
import type { ResolverOptions } from '../block/resolver.js';
import type { SnapshotInfo } from '../block/types.js';

/** What {@link snapshot} does. */
export type SnapshotAction = 'list' | 'create' | 'apply' | 'delete';

/** Phases of {@link snapshot}: the action (one step). */
export type SnapshotPhase = SnapshotAction;

/** Options of {@link snapshot}. */
export interface SnapshotOptions extends JobOptions<SnapshotPhase>, ResolverOptions, Pick<OpenImageOptions, 'locking'> {
  /** The action (`-l`, `-c`, `-a`, `-d`). */
  action: SnapshotAction;
  /**
   * The snapshot: the new name for `create`, an ID or name for `apply` (ID
   * first), a name for `delete` (qemu-img deletes by name only).
   */
  name?: string | undefined;
  /** The image's format; probed when omitted. */
  format?: string | undefined;
  /** List while another process writes the image (`-U`; `list` only). */
  forceShare?: boolean | undefined;
  /** Drivers to use. */
  registry?: DriverRegistry | undefined;
  /** Receives qemu-img's warning for an image whose raw format was only guessed (create, apply, delete). */
  onWarning?: ((warning: { code: string; message: string }) => void) | undefined;
}

/** What {@link snapshot} did. */
export interface SnapshotResult {
  /** The snapshots after the action, in table order. */
  readonly snapshots: readonly SnapshotInfo[];
  /** The snapshot created, applied or deleted. */
  readonly snapshot?: SnapshotInfo | undefined;
}

/** Marks an error as coming from the action (not the open), for qemu-img's "Could not … snapshot" wording. */
function actionError(err: unknown): unknown {
  if (!(err instanceof VdiskError)) return err;
  return err.rephrase(err.message, { stage: 'action' });
}

function unsupported(format: string, errno: number): UnsupportedError {
  return new UnsupportedError(`Format '${format}' has no internal snapshots`, { reason: 'no-snapshots', errno });
}

async function act(dev: BlockDevice, options: SnapshotOptions): Promise<SnapshotResult> {
  const ops = dev.snapshots;
  const name = options.name ?? '';
  switch (options.action) {
    case 'list':
      return { snapshots: ops?.list() ?? [] };
    case 'create': {
      if (!ops?.create) throw unsupported(dev.format, 95);
      const created = await ops.create({ name: snapshotName(name) });
      return { snapshots: ops.list(), snapshot: created };
    }
    case 'apply': {
      // bdrv_snapshot_goto: bitmaps (enabled or not) would not record the
      // clusters a revert changes, so any loaded bitmap refuses it, first.
      if ((dev.bitmaps?.list().length ?? 0) > 0) throw new LockedError('Device has active dirty bitmaps', { errno: 16 });
      if (!ops?.apply) {
        // qemu-img 7.2 reopens the image while falling back to its file: the probed-raw warning shows twice.
        if (dev.top.probedRaw) options.onWarning?.({ code: 'probed-raw', message: probedRawWarning(dev.top.path) });
        throw unsupported(dev.format, 95);
      }
      const target = ops.list().find((s) => s.id === name) ?? ops.list().find((s) => s.name === name);
      await ops.apply(name);
      return { snapshots: ops.list(), snapshot: target };
    }
    case 'delete': {
      if (!ops?.delete) throw new NotFoundError(`Snapshot '${name}' not found`, { reason: 'no-snapshots', data: { snapshot: name } });
      const deleted = await ops.delete({ name });
      return { snapshots: ops.list(), snapshot: deleted };
    }
  }
}

async function runSnapshot(target: ImageTarget, options: SnapshotOptions, ctx: JobContext<SnapshotPhase>): Promise<SnapshotResult> {
  const readOnly = options.action === 'list';
  // Backing chain included: qemu-img opens it too, so a missing backing file fails every action.
  const dev = await BlockDevice.open(target, { ...options, readOnly, signal: ctx.signal });
  let result: SnapshotResult;
  try {
    // Cancelled before the image changes, or not at all: the action runs to its end.
    ctx.signal.throwIfAborted();
    ctx.progress.phase(options.action, 1);
    result = await act(dev, options);
  } catch (err) {
    await dev.close().catch(() => undefined);
    throw actionError(err);
  }
  await dev.close();
  ctx.progress.finish();
  return result;
}

/** The name a new snapshot gets: qemu copies it into QEMUSnapshotInfo's 256-byte field, so at most 255 bytes. */
function snapshotName(name: string): string {
  const bytes = encodeName(name);
  return bytes.length > 255 ? decodeName(bytes.subarray(0, 255)) : name;
}

/**
 * Lists, creates, applies or deletes an internal snapshot. Returns a job:
 * await it, or cancel it (before the image changes) with its `signal`
 * option or `job.cancel()`.
 *
 * @param target - the image (a path, or a ByteStore)
 * @returns the snapshots after the action, and the one acted on
 * @throws {NotFoundError} ENOENT when `apply`/`delete` finds no such snapshot;
 *   {@link UnsupportedError} EUNSUPPORTED for formats without snapshots (`reason: 'no-snapshots'`),
 *   refcount saturation, external data files; {@link LockedError} EBUSY when `apply` meets
 *   persistent bitmaps; open errors as {@link open}.
 *   Errors from the action itself carry `stage: 'action'`; `errno` is qemu's errno where it words one.
 * @example
 * ```ts
 * await snapshot('disk.qcow2', { action: 'create', name: 'before-upgrade' });
 * const { snapshots } = await snapshot('disk.qcow2', { action: 'list' });
 * await snapshot('disk.qcow2', { action: 'apply', name: 'before-upgrade' });
 * ```
 */
export function snapshot(target: ImageTarget, options: SnapshotOptions): Job<SnapshotResult, SnapshotPhase> {
  return new Job((ctx) => runSnapshot(target, options, ctx), options);
}
