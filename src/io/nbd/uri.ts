/**
 * NBD URIs as qemu and libnbd spell them: `nbd://host[:port]/export`
 * (also `nbd+tcp://`) and `nbd+unix:///export?socket=PATH`, with qemu's
 * rules for what is refused and its spelling of the name it shows.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { DEFAULT_PORT } from './constants.js';
import type { NbdTlsSettings } from './tls.js';

/** Where an export is and what it is called. */
export interface NbdAddress {
  /** A TCP host and port, or a unix socket path. */
  readonly server: { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };
  /** The export name (empty: the server's default export). */
  readonly exportName: string;
  /** The name qemu shows for it (`nbd://host:10809/x`, `nbd+unix:///x?socket=p`). */
  readonly canonical: string;
  /** TLS settings (`nbds://`, `nbds+unix://`, as libnbd spells them). */
  readonly tls?: NbdTlsSettings | undefined;
}

const SYNTAX = /^(nbds?|nbd\+tcp|nbds?\+unix):\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i;

function decode(s: string, uri: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(uri);
  }
}

function invalid(uri: string): InvalidArgumentError {
  return new InvalidArgumentError('No valid URL specified', { file: uri });
}

/**
 * Parses an NBD URI.
 *
 * @throws {InvalidArgumentError} EINVAL `No valid URL specified` (qemu's words) for a malformed one
 */
export function parseNbdUri(uri: string): NbdAddress {
  const m = SYNTAX.exec(uri);
  if (!m) throw invalid(uri);
  const scheme = (m[1] as string).toLowerCase();
  const authority = m[2] ?? '';
  const exportName = decode((m[3] ?? '').replace(/^\//, ''), uri);
  let params = m[4] === undefined || m[4] === '' ? [] : m[4].split('&');
  const secure = scheme.startsWith('nbds');
  let tls: NbdTlsSettings | undefined;
  if (secure) {
    tls = tlsSettings(params.filter((p) => p.startsWith('tls-')), uri);
    params = params.filter((p) => !p.startsWith('tls-'));
  }
  const prefix = secure ? 'nbds' : 'nbd';
  if (scheme.endsWith('+unix')) {
    const [param] = params;
    if (params.length !== 1 || authority !== '' || !param?.startsWith('socket=')) throw invalid(uri);
    const path = decode(param.slice('socket='.length), uri);
    if (path === '') throw invalid(uri);
    const canonical = exportName === '' ? `${prefix}+unix://?socket=${path}` : `${prefix}+unix:///${exportName}?socket=${path}`;
    return { server: { kind: 'unix', path }, exportName, canonical, tls };
  }
  if (params.length > 0 || authority === '') throw invalid(uri);
  const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d*))?$/.exec(authority);
  if (!hp || hp[1] === '' || hp[1] === undefined) throw invalid(uri);
  const hostText = hp[1];
  const host = hostText.startsWith('[') ? hostText.slice(1, -1) : decode(hostText, uri);
  const port = hp[2] === undefined || hp[2] === '' ? DEFAULT_PORT : Number(hp[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(uri);
  const canonical = `${prefix}://${hostText}:${port}${exportName === '' ? '' : `/${exportName}`}`;
  return { server: { kind: 'tcp', host, port }, exportName, canonical, tls };
}

/** libnbd's TLS query parameters; anything else starting with `tls-` is refused. */
function tlsSettings(params: readonly string[], uri: string): NbdTlsSettings {
  const out: { pskFile?: string; username?: string; certificates?: string; verifyPeer: boolean } = { verifyPeer: true };
  for (const p of params) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const value = decode(eq < 0 ? '' : p.slice(eq + 1), uri);
    if (key === 'tls-psk-file') out.pskFile = value;
    else if (key === 'tls-username') out.username = value;
    else if (key === 'tls-certificates') out.certificates = value;
    else if (key === 'tls-verify-peer') out.verifyPeer = !/^(false|no|off|0)$/i.test(value);
    else throw invalid(uri);
  }
  return out;
}

/** How the server is named in connect errors (`'/run/x.sock'`, `'127.0.0.1:10809'`). */
export function serverText(a: NbdAddress): string {
  return a.server.kind === 'unix' ? a.server.path : `${a.server.host}:${a.server.port}`;
}
