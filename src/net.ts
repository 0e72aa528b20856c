/**
 * `vdisk/net`: the network ByteStores (HTTP(S), NBD, S3), for callers that
 * open a store themselves (jobs also open them from a URL name).
 *
 * @module vdisk/net
 */
export { HttpStore, type HttpStoreOptions } from './io/http-store.js';
export { NbdStore, openNbdStore, type NbdStoreOptions } from './io/nbd/store.js';
