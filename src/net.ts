/**
 * vdisk/net: the network stores (ByteStores over NBD, HTTP(S), S3) for
 * callers that open them directly.
 */
export { NbdStore, openNbdStore, type NbdStoreOptions } from './io/nbd/store.js';
