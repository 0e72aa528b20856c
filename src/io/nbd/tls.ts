/**
 * TLS for NBD (NBD_OPT_STARTTLS), configured as libnbd's `nbds://` and
 * `nbds+unix://` URIs configure it: a pre-shared key file
 * (`tls-psk-file`, lines of `username:hexkey`, with `tls-username`) or a
 * directory of X.509 files (`tls-certificates`: ca-cert.pem, and
 * client-cert.pem/client-key.pem when the server asks for them), peers
 * verified unless `tls-verify-peer=false`.
 */
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { isIP, type Socket } from 'node:net';

import { InvalidArgumentError, IoError } from '../../core/errors.js';
import { fsError } from '../errno.js';
import { readFile, readFileBytes } from '../fs-calls.js';

/** TLS settings from an `nbds` URI's query. */
export interface NbdTlsSettings {
  readonly pskFile?: string | undefined;
  readonly username?: string | undefined;
  readonly certificates?: string | undefined;
  readonly verifyPeer: boolean;
}

async function pskOptions(file: string, username: string | undefined, name: string): Promise<ConnectionOptions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fsError(err, `Could not read the TLS PSK file '${file}'`, name);
  }
  const user = username ?? userInfo().username;
  const line = text.split('\n').find((l) => l.startsWith(`${user}:`));
  const hex = line?.slice(user.length + 1).trim();
  if (!hex || !/^(?:[0-9a-f]{2})+$/i.test(hex)) throw new InvalidArgumentError(`TLS PSK file '${file}' has no key for user '${user}'`, { file: name });
  const psk = Buffer.from(hex, 'hex');
  // Node offers PSK with TLS 1.2 ciphers; GnuTLS servers (qemu-nbd, nbdkit) take them.
  return { pskCallback: () => ({ psk, identity: user }), ciphers: 'PSK', maxVersion: 'TLSv1.2', checkServerIdentity: () => undefined };
}

async function x509Options(dir: string, verifyPeer: boolean, name: string): Promise<ConnectionOptions> {
  const opt = async (f: string): Promise<Buffer | undefined> => readFileBytes(join(dir, f)).catch(() => undefined);
  const ca = await opt('ca-cert.pem');
  if (!ca && verifyPeer) throw new InvalidArgumentError(`No CA certificate 'ca-cert.pem' in '${dir}'`, { file: name });
  const cert = await opt('client-cert.pem');
  const key = await opt('client-key.pem');
  return { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}), rejectUnauthorized: verifyPeer };
}

/**
 * Upgrades a socket that has just had NBD_OPT_STARTTLS acknowledged.
 *
 * @throws {IoError} EIO when the TLS handshake fails
 */
export async function startTls(socket: Socket, settings: NbdTlsSettings, host: string | undefined, name: string): Promise<TLSSocket> {
  const base = settings.pskFile ? await pskOptions(settings.pskFile, settings.username, name) : await x509Options(settings.certificates ?? '', settings.verifyPeer, name);
  const options: ConnectionOptions = {
    socket,
    // SNI takes names only; an address is still checked against the certificate.
    ...(host && !settings.pskFile && isIP(host) === 0 ? { servername: host } : {}),
    ...(host === undefined && !settings.pskFile ? { checkServerIdentity: () => undefined } : {}),
    ...base,
  };
  return new Promise((resolve, reject) => {
    const t = connect(options);
    t.once('secureConnect', () => resolve(t));
    t.once('error', (e) => reject(new IoError(`TLS handshake with '${name}' failed: ${e.message}`, { file: name, cause: e })));
  });
}
