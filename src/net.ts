/**
 * `vdisk/net`: the network ByteStores (HTTP(S), NBD, S3), for callers that
 * open a store themselves (jobs also open them from a URL name).
 *
 * @module vdisk/net
 */
export { HttpStore, type HttpStoreOptions } from './io/http-store.js';
export { NbdStore, openNbdStore, type NbdStoreOptions } from './io/nbd/store.js';
export { S3Store } from './io/s3/s3-store.js';
export { uploadToS3, choosePartSize, type S3UploadOptions } from './io/s3/upload.js';
export { loadS3Config, type S3Config, type S3Credentials, type Env } from './io/s3/config.js';
