/**
 * `vdisk/net`: the network stores, for callers that open them directly.
 * @module
 */
export { S3Store } from './io/s3/s3-store.js';
export { uploadToS3, choosePartSize, type S3UploadOptions } from './io/s3/upload.js';
export { loadS3Config, type S3Config, type S3Credentials } from './io/s3/config.js';
