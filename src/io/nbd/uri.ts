/**
 * NBD URIs as qemu and libnbd spell them: `nbd://host[:port]/export`
 * (also `nbd+tcp://`) and `nbd+unix:///export?socket=PATH`, and qemu's
 * older names `nbd:host:port[:exportname=NAME]` and
 * `nbd:unix:PATH[:exportname=NAME]`, with qemu's rules for what is refused
 * and its spelling of the name it shows.
 */
import { InvalidArgumentError, IoError } from '../../core/errors.js';
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
  if (uri.startsWith('nbd:') && !uri.includes('://')) return parseLegacyName(uri);
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
    return { server: { kind: 'unix', path }, exportName, canonical: unixName(prefix, exportName, path), tls };
  }
  if (params.length > 0 || authority === '') throw invalid(uri);
  const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d*))?$/.exec(authority);
  if (!hp || hp[1] === '' || hp[1] === undefined) throw invalid(uri);
  const hostText = hp[1];
  const host = hostText.startsWith('[') ? hostText.slice(1, -1) : decode(hostText, uri);
  const port = hp[2] === undefined || hp[2] === '' ? DEFAULT_PORT : Number(hp[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(uri);
  return { server: { kind: 'tcp', host, port }, exportName, canonical: tcpName(prefix, hostText, port, exportName), tls };
}

/** The name qemu shows for an export on a unix socket. */
function unixName(prefix: string, exportName: string, path: string): string {
  return exportName === '' ? `${prefix}+unix://?socket=${path}` : `${prefix}+unix:///${exportName}?socket=${path}`;
}

/** The name qemu shows for an export over TCP (`host` as given: bracketed for IPv6 in a URI). */
function tcpName(prefix: string, host: string, port: number, exportName: string): string {
  return `${prefix}://${host}:${port}${exportName === '' ? '' : `/${exportName}`}`;
}

const EXPORT_OPTION = ':exportname=';

/**
 * qemu's older NBD names (block/nbd.c nbd_parse_filename, util/qemu-sockets.c
 * inet_parse): `nbd:unix:PATH` or `nbd:HOST:PORT` (`[IPV6]:PORT`; `,ipv4`-style
 * options after the port are ignored), then `:exportname=NAME`. Shown as qemu
 * shows them, in URI form.
 *
 * @throws {InvalidArgumentError} EINVAL in qemu's words: `NBD server address missing`,
 *   `error parsing address '…'`, `error parsing IPv6 address '…'`
 */
function parseLegacyName(name: string): NbdAddress {
  let spec = name.slice('nbd:'.length);
  let exportName = '';
  const at = spec.indexOf(EXPORT_OPTION);
  if (at >= 0) {
    exportName = spec.slice(at + EXPORT_OPTION.length);
    spec = spec.slice(0, at);
    // qemu stops parsing at an empty export name, so no server is set either.
    if (exportName === '') spec = '';
  }
  if (spec === '') throw new InvalidArgumentError('NBD server address missing', { file: name });
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length);
    return { server: { kind: 'unix', path }, exportName, canonical: unixName('nbd', exportName, path) };
  }
  // sscanf's %64[^:]:%32[^,] and [%64[^]]]:%32[^,], as inet_parse reads them.
  const m = spec.startsWith('[') ? /^\[([^\]]{1,64})\]:([^,]{1,32})/.exec(spec) : /^([^:]{0,64}):([^,]{1,32})/.exec(spec);
  if (!m) throw new InvalidArgumentError(spec.startsWith('[') ? `error parsing IPv6 address '${spec}'` : `error parsing address '${spec}'`, { file: name });
  const host = m[1] as string;
  const portText = m[2] as string;
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (host === '') throw new IoError(`address resolution failed for ${host}:${portText}: Name or service not known`, { file: name });
  if (!(port >= 1 && port <= 65535)) throw new IoError(`address resolution failed for ${host}:${portText}: Servname not supported for ai_socktype`, { file: name });
  return { server: { kind: 'tcp', host, port }, exportName, canonical: tcpName('nbd', host, port, exportName) };
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
