/**
 * Names that are URLs: the network stores behind `http://`, `https://`,
 * `nbd://`, `nbd+unix://`, `nbd+tcp://` and `s3://`. Each store's module is
 * loaded only when a name with its scheme is opened, so a local command
 * never pays for the network code.
 */
import { UnsupportedError } from '../core/errors.js';
import type { ByteStore } from '../io/byte-store.js';
import type { NetworkOptions } from '../io/network-options.js';

/** How a network store is opened. */
export interface NetworkOpenOptions extends NetworkOptions {
  readonly readOnly: boolean;
}

type Opener = (name: string, options: NetworkOpenOptions) => Promise<ByteStore>;

/** Schemes vdisk opens, and where their store lives (filled in as each store lands). */
const OPENERS: Readonly<Record<string, () => Promise<Opener>>> = {
  http: async () => (await import('../io/http-store.js')).openHttpStore,
  https: async () => (await import('../io/http-store.js')).openHttpStore,
  nbd: async () => (await import('../io/nbd/store.js')).openNbdStore,
  'nbd+unix': async () => (await import('../io/nbd/store.js')).openNbdStore,
  'nbd+tcp': async () => (await import('../io/nbd/store.js')).openNbdStore,
  nbds: async () => (await import('../io/nbd/store.js')).openNbdStore,
  'nbds+unix': async () => (await import('../io/nbd/store.js')).openNbdStore,
  s3: async () => (await import('../io/s3/s3-store.js')).openS3Store,
};

/** The network scheme of `name` (`https` in `https://x/y`), when vdisk has a store for it. */
export function networkScheme(name: string): string | undefined {
  const m = /^([a-z][a-z0-9+]*):\/\//i.exec(name);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme !== undefined) return scheme in OPENERS ? scheme : undefined;
  // qemu's older NBD names (`nbd:host:port`, `nbd:unix:/path`; see io/nbd/uri.ts)
  return name.startsWith('nbd:') ? 'nbd' : undefined;
}

/**
 * Opens the store a URL names.
 *
 * @throws {UnsupportedError} EUNSUPPORTED for a scheme vdisk has no store for
 */
export async function openNetworkStore(name: string, options: NetworkOpenOptions): Promise<ByteStore> {
  const scheme = networkScheme(name);
  const load = scheme === undefined ? undefined : OPENERS[scheme];
  if (!load) throw new UnsupportedError(`Unknown protocol in '${name}'`, { file: name });
  const open = await load();
  return open(name, options);
}
