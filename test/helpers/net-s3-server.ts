/**
 * s3rver (an S3-API server from npm) started in-process on 127.0.0.1, port
 * 0, in a temporary directory, for the S3 tests. s3rver 3.7 lacks
 * AbortMultipartUpload and ListMultipartUploads: a small middleware adds
 * both over its own upload directory, so an aborted upload is checked on
 * the server's side.
 */
import { createRequire } from 'node:module';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
  set(name: string, value: string): void;
  type: string;
}
interface S3rverLike {
  middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[];
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/** A running server and the environment that points vdisk at it. */
export interface S3Server {
  readonly env: Record<string, string>;
  readonly url: string;
  /** Faults to inject: the next `unavailable` ranged GETs answer 503 with Retry-After: 0. */
  readonly faults: { unavailable: number };
  close(): Promise<void>;
}

/** True when s3rver is installed. */
export function hasS3rver(): boolean {
  try {
    createRequire(import.meta.url).resolve('s3rver');
    return true;
  } catch {
    return false;
  }
}

/** Starts s3rver with `buckets` in `dir`. */
export async function startS3(dir: string, buckets: readonly string[]): Promise<S3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as new (o: object) => S3rverLike;
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })) });
  const faults = { unavailable: 0 };
  server.middleware.unshift(async (ctx, next) => {
    const [, bucket, ...key] = ctx.path.split('/');
    const header = (name: string): string | undefined => (ctx as unknown as { get(n: string): string }).get(name) || undefined;
    if (ctx.method === 'GET' && header('range') !== undefined && faults.unavailable > 0) {
      faults.unavailable--;
      ctx.status = 503;
      ctx.set('Retry-After', '0');
      ctx.type = 'application/xml';
      ctx.body = '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
      return;
    }
    // S3 answers 412 to an If-Match that no longer names the object; s3rver ignores the header.
    const ifMatch = header('if-match');
    if (ctx.method === 'GET' && ifMatch !== undefined && key.length > 0) {
      const md5 = await readFile(join(dir, bucket ?? '', `${key.join('/')}._S3rver_object.md5`), 'utf8').catch(() => undefined);
      if (md5 !== undefined && ifMatch !== `"${md5}"`) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body = '<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
        return;
      }
    }
    const uploads = join(dir, bucket ?? '', '._S3rver_uploads');
    if (ctx.method === 'DELETE' && ctx.query['uploadId'] !== undefined) {
      await rm(join(uploads, ctx.query['uploadId']), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.method === 'GET' && key.length === 0 && ctx.query['uploads'] !== undefined) {
      const ids = await readdir(uploads).catch(() => [] as string[]);
      const items = await Promise.all(ids.map(async (id) => `<Upload><Key>${await readFile(join(uploads, id, 'key'), 'utf8')}</Key><UploadId>${id}</UploadId></Upload>`));
      ctx.type = 'application/xml';
      ctx.body = `<ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${items.join('')}</ListMultipartUploadsResult>`;
      return;
    }
    await next();
  });
  const { port } = await server.run();
  const url = `http://127.0.0.1:${port}`;
  const env = { AWS_ENDPOINT_URL: url, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' };
  return { env, url, faults, close: () => server.close() };
}
