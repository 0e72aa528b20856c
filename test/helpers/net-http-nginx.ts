/**
 * A real nginx (Debian's nginx-light) serving a directory on 127.0.0.1, run
 * as the current user with a config written into a temporary directory,
 * and the bytes it sent, read from its access log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Where Debian installs nginx. */
export const NGINX_BIN = '/usr/sbin/nginx';

/** Skips the test loudly when nginx is missing (CI installs nginx-light). */
export function requireNginx(t: TestContext): boolean {
  if (existsSync(NGINX_BIN)) return true;
  t.skip(`${NGINX_BIN} not installed (apt-get install nginx-light): HTTP tests against nginx SKIPPED`);
  return false;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A running nginx. */
export interface Nginx {
  /** `http://127.0.0.1:PORT/name`. */
  url(name: string): string;
  /** Bytes sent (headers included) since the last reset, as nginx logged them. */
  bytesSent(): number;
  /** Logged requests since the last reset (`METHOD STATUS RANGE BYTES`). */
  requests(): string[];
  /** Forgets what was logged so far. */
  reset(): void;
  stop(): Promise<void>;
}

/**
 * Starts nginx serving `root`, its config, pid and logs in `work`.
 * `serverExtra` goes into the server block (e.g. a header check).
 */
export async function startNginx(root: string, work: string, serverExtra = '', tls?: { cert: string; key: string }): Promise<Nginx> {
  const port = await freePort();
  const ssl = tls ? ` ssl; ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key}` : '';
  const scheme = tls ? 'https' : 'http';
  const log = join(work, 'access.log');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${work};`).join(' ');
  writeFileSync(
    join(work, 'nginx.conf'),
    // As root, nginx's workers would drop to nobody, who cannot read a private temporary directory.
    `${process.getuid?.() === 0 ? 'user root;' : ''} daemon off; pid ${join(work, 'nginx.pid')}; error_log ${join(work, 'error.log')}; worker_processes 1;
events {}
http { ${temp} log_format b '$request_method $status "$http_range" $bytes_sent';
  server { listen 127.0.0.1:${port}${ssl}; root ${root}; access_log ${log} b; ${serverExtra} } }
`,
  );
  writeFileSync(log, '');
  const child = spawn(NGINX_BIN, ['-c', join(work, 'nginx.conf'), '-e', join(work, 'error.log')], { stdio: 'ignore' });
  await waitForPort(port, child, tls !== undefined);
  let skip = 0;
  const lines = (): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  return {
    url: (name) => `${scheme}://127.0.0.1:${port}/${name}`,
    requests: () => lines().slice(skip),
    bytesSent: () => lines().slice(skip).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0),
    reset: () => {
      skip = lines().length;
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function waitForPort(port: number, child: ChildProcess, tls: boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with status ${child.exitCode}`);
    try {
      await connects(port, tls);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error('nginx did not start listening');
}

/** Resolves once a TCP (or TLS, any certificate) connection to the port succeeds. */
function connects(port: number, tls: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, done) : connect({ port, host: '127.0.0.1' }, done);
    function done(): void {
      socket.destroy();
      resolve();
    }
    socket.on('error', reject);
  });
}
