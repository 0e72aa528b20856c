/**
 * Images created on a URL, as qemu creates them. NBD exports exist
 * already and have a fixed size: qemu's nbd driver "creates" through
 * bdrv_co_create_opts_simple (block.c), which refuses preallocation, opens
 * the export for writing, lets a size up to the export's pass (a larger
 * one is "Cannot grow NBD nodes"), and zeroes the first sector. Nothing is
 * renamed or removed afterwards: a failed job leaves the export as far as
 * it got. HTTP(S) images are read-only (qemu's curl driver has no create).
 */
import { UnsupportedError, VdiskError } from '../core/errors.js';
import type { ByteStore } from '../io/byte-store.js';
import type { NetworkOptions } from '../io/network-options.js';
import { networkScheme, openNetworkStore } from './network-stores.js';
import { checkSimplePreallocation } from '../formats/index.js';
import { localName, protocolPrefix } from './protocol-name.js';

/** What the protocol's create is given: the raw image's size and preallocation; 0 and `off` under another format. */
export interface ProtocolCreate {
  /** Bytes the export must hold at least. */
  readonly size: number;
  /** qemu's preallocation mode; anything but `off` is refused on an export. */
  readonly preallocation: string;
}

/** What formats other than raw pass to the protocol's create: nothing to grow to, no preallocation. */
export const NO_PROTOCOL_REQUEST: ProtocolCreate = { size: 0, preallocation: 'off' };

/** The qemu block driver a scheme belongs to (every nbd URI form is the `nbd` driver). */
function protocolDriver(scheme: string): string {
  return scheme.startsWith('nbd') ? 'nbd' : scheme;
}

/** True when `name` is a URL: created on through {@link createOnNetwork}, which refuses all but NBD exports. */
export function isNetworkTarget(name: string): boolean {
  return networkScheme(name) !== undefined;
}

/**
 * Refuses a URL nothing can be created on, as bdrv_img_create does before
 * its `Formatting` line: `http(s)://` (curl is read-only) and `s3://`
 * (uploaded by convert only, see jobs/convert-s3.ts).
 *
 * @throws {UnsupportedError} EUNSUPPORTED `Protocol driver 'http' does not support image creation`
 */
export function refuseUncreatable(name: string): void {
  const scheme = networkScheme(name);
  // A local name with a protocol vdisk cannot write (`foo:bar`) is refused before anything is printed or made.
  const local = scheme === undefined ? protocolPrefix(name) : undefined;
  if (local === 'null-co' || local === 'null-aio') throw new UnsupportedError(`Protocol driver '${local}' does not support image creation`, { file: name });
  if (scheme === undefined) localName(name);
  if (scheme === undefined || protocolDriver(scheme) === 'nbd') return;
  throw new UnsupportedError(`Protocol driver '${scheme}' does not support image creation`, { file: name });
}

/**
 * A view of the export with the size it has: truncating to at most that
 * size succeeds without changing anything (qemu's nbd_co_truncate with
 * `exact` false), a larger size fails as the store refuses it. Closing the
 * view closes the connection.
 */
function fixedSize(store: ByteStore, size: number): ByteStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'truncate') return async (n: number) => (n <= size ? undefined : target.truncate(n));
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Creates on the export `name` what qemu's protocol create does, and
 * returns it open for writing the image (the caller closes it).
 *
 * @throws {UnsupportedError} for preallocation (`Unsupported preallocation mode 'full'`; a mode that does not parse: InvalidArgumentError)
 * @throws {VdiskError} the open's error after `Protocol driver 'nbd' does not support image creation, and opening the image failed: `
 * @throws {InvalidArgumentError} `Cannot grow NBD nodes` for a size larger than the export
 */
export async function createOnNetwork(name: string, request: ProtocolCreate, network: NetworkOptions | undefined): Promise<ByteStore> {
  refuseUncreatable(name);
  checkSimplePreallocation(request.preallocation, name);
  let store: ByteStore;
  try {
    store = await openNetworkStore(name, { ...network, readOnly: false });
  } catch (err) {
    if (!(err instanceof VdiskError)) throw err;
    const driver = protocolDriver(networkScheme(name) ?? '');
    throw err.rephrase(`Protocol driver '${driver}' does not support image creation, and opening the image failed: ${err.message}`, { file: name });
  }
  try {
    const size = await store.size();
    if (request.size > size) await store.truncate(request.size);
    // bdrv_co_create_opts_simple clears the first sector, so no old header is probed as the new image's.
    const first = Math.min(size, 512);
    if (first > 0 && !(await store.zeroRange?.(0, first, true))) await store.write(0, new Uint8Array(first));
    return fixedSize(store, size);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}
