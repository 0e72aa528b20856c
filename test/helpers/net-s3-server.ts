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
  server.middleware.unshift(async (ctx, next) => {
    const [, bucket, ...key] = ctx.path.split('/');
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
  return { env, url, close: () => server.close() };
}
