/**
 * A test-only format that lays guest bytes 1:1 in its store (like raw) and
 * records every call its writer receives, so block-layer tests can see how
 * BlockDevice splits, orders and serializes requests.
 */
import { DriverRegistry } from '../../src/block/registry.js';
import type { FormatDriver, FormatImage, ImageWriter, SnapshotInfo, SnapshotOps } from '../../src/formats/driver.js';
import { builtinDrivers } from '../../src/formats/index.js';

/** One writer call, as received. */
export interface TraceCall {
  readonly op: 'write' | 'zero' | 'discard' | 'snapshot-create' | 'snapshot-created';
  readonly offset: number;
  readonly length: number;
}

/** How the traced writer behaves. */
export interface TraceOptions {
  /** The writer's requestBoundary. */
  readonly boundary?: number | undefined;
  /** Awaited inside snapshot create, between its two trace entries. */
  readonly snapshotGate?: (() => Promise<void>) | undefined;
}

/** A driver named `trace` and the log of what its writers received. */
export function traceDriver(options: TraceOptions = {}): { driver: FormatDriver; calls: TraceCall[]; registry: DriverRegistry } {
  const calls: TraceCall[] = [];
  const driver: FormatDriver = {
    name: 'trace',
    createOptions: [],
    probe: () => 0,
    async open(store, o): Promise<FormatImage> {
      const size = await store.size();
      const snaps: SnapshotInfo[] = [];
      const writer: ImageWriter = {
        ...(options.boundary === undefined ? {} : { requestBoundary: options.boundary }),
        async write(offset, data) {
          calls.push({ op: 'write', offset, length: data.length });
          await store.write(offset, data);
        },
        async writeZeroes(offset, length) {
          calls.push({ op: 'zero', offset, length });
          await store.write(offset, new Uint8Array(length));
        },
        async discard(offset, length) {
          calls.push({ op: 'discard', offset, length });
          await store.write(offset, new Uint8Array(length));
        },
      };
      const snapshots: SnapshotOps = {
        list: () => snaps,
        open: () => Promise.reject(new Error('not implemented')),
        ...(o.readOnly
          ? {}
          : {
              async create({ name }) {
                calls.push({ op: 'snapshot-create', offset: 0, length: 0 });
                await options.snapshotGate?.();
                const info = { id: String(snaps.length + 1), name, vmStateSize: 0, dateSec: 0, dateNsec: 0, vmClockNsec: 0 };
                snaps.push(info);
                calls.push({ op: 'snapshot-created', offset: 0, length: 0 });
                return info;
              },
            }),
      };
      return {
        format: 'trace',
        store,
        virtualSize: size,
        granularity: options.boundary ?? 512,
        backing: undefined,
        mapping: async (offset, length) => [{ kind: 'data', offset, length, store, hostOffset: offset }],
        ...(o.readOnly ? {} : { writer }),
        snapshots,
        describe: async () => ({}),
        flush: () => (o.readOnly ? Promise.resolve() : store.flush()),
        close: () => store.close(),
      };
    },
  };
  const registry = new DriverRegistry(builtinDrivers);
  registry.register(driver);
  return { driver, calls, registry };
}
