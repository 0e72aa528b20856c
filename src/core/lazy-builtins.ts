/**
 * Node built-ins that cost start-up time, loaded on first use. A Node
 * built-in outside Node's start-up snapshot is compiled from source when
 * first required: `node:zlib` costs about as much as Node's own `-e 0`
 * start-up adds per 10%, `node:v8` (with the streams it loads) more, and a
 * command like `vdisk info` needs none of them. Modules that only sometimes
 * need one call these getters instead of importing it.
 */
import { createRequire } from 'node:module';

import type * as Crypto from 'node:crypto';
import type * as Stream from 'node:stream';
import type * as StreamPromises from 'node:stream/promises';
import type * as V8 from 'node:v8';
import type * as WorkerThreads from 'node:worker_threads';
import type * as Zlib from 'node:zlib';

// Made on first use too: createRequire parses this module's URL (~0.5 ms at start-up).
let load: NodeJS.Require | undefined;
const cache = new Map<string, unknown>();

function builtin<T>(name: string): T {
  let m = cache.get(name);
  if (m === undefined) cache.set(name, (m = (load ??= createRequire(import.meta.url))(name)));
  return m as T;
}

/** `node:crypto`. */
export const crypto = (): typeof Crypto => builtin('node:crypto');
/** `node:zlib`. */
export const zlib = (): typeof Zlib => builtin('node:zlib');
/** `node:worker_threads`. */
export const workerThreads = (): typeof WorkerThreads => builtin('node:worker_threads');
/** `node:stream`. */
export const stream = (): typeof Stream => builtin('node:stream');
/** `node:stream/promises`. */
export const streamPromises = (): typeof StreamPromises => builtin('node:stream/promises');
/** `node:v8`. */
export const v8 = (): typeof V8 => builtin('node:v8');
