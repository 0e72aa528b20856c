/**
 * `vdisk/net`: the network ByteStores, for callers that open a store
 * themselves (jobs also open them from a URL name).
 */
export { HttpStore, type HttpStoreOptions } from './io/http-store.js';
