/**
 * qemu's reading of a file name's protocol prefix (block.c's
 * path_has_protocol and bdrv_find_protocol): the text before the first
 * `:` names a protocol when no `/` comes before it. So `file:my:disk.qcow2`
 * is the file `my:disk.qcow2` (the documented way to name a file with a
 * colon), `./foo:bar` is a file, and `foo:bar` is refused as an unknown
 * protocol instead of being created as a file qemu-img would not open.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';

/** Protocols qemu (Debian's build) registers; vdisk opens the local and URL ones. */
export const QEMU_PROTOCOLS: ReadonlySet<string> = new Set([
  'nbd', 'nbd+unix', 'nbd+tcp', 'http', 'https', 'ftp', 'ftps', 'ssh', 'iscsi', 'iser', 'gluster', 'gluster+tcp',
  'gluster+unix', 'gluster+rdma', 'rbd', 'nfs', 'sheepdog', 'vxhs', 'null-co', 'null-aio', 'blkdebug', 'blkverify',
  'blklogwrites', 'quorum', 'throttle', 'vvfat', 'fat', 'host_device', 'host_cdrom', 'nvme', 'compress', 'raw',
  'copy-on-read', 'copy-before-write', 'preallocate', 'replication', 'snapshot-access', 'file',
]);

/** Protocols whose name is a local file (file-posix's parse_filename strips the prefix). */
const LOCAL_PROTOCOLS = new Set(['file', 'host_device', 'host_cdrom']);

/** The protocol prefix of `name` as qemu reads it (`file` in `file:x`, `nbd` in `nbd://h`), if it has one. */
export function protocolPrefix(name: string): string | undefined {
  const end = name.search(/[:/]/);
  return end >= 0 && name[end] === ':' ? name.slice(0, end) : undefined;
}

/** A name that stands for a local file. */
export interface LocalName {
  /** The file's path: the name without its `file:`, `host_device:` or `host_cdrom:` prefix. */
  readonly path: string;
  /** The local protocol given (`file`, `host_device`, `host_cdrom`), if any. */
  readonly protocol?: string | undefined;
  /** The protocol given (`host_device`, `host_cdrom`), when it asks for a device. */
  readonly device?: 'host_device' | 'host_cdrom' | undefined;
}

/**
 * The local file a name (not a URL, not `json:`) stands for.
 *
 * @throws {UnsupportedError} EUNSUPPORTED for any other protocol prefix,
 *   with qemu's "Unknown protocol" for one qemu does not know either
 */
export function localName(name: string): LocalName {
  const protocol = protocolPrefix(name);
  if (protocol === undefined) return { path: name };
  if (LOCAL_PROTOCOLS.has(protocol)) {
    const path = strippedPath(name, protocol);
    return protocol === 'file' ? { path, protocol } : { path, protocol, device: protocol as 'host_device' | 'host_cdrom' };
  }
  if (protocol === 'null-co' || protocol === 'null-aio') {
    throw new InvalidArgumentError(`The only allowed filename for this driver is '${protocol}://'`, { file: name });
  }
  if (!QEMU_PROTOCOLS.has(protocol)) throw new UnsupportedError(`Unknown protocol '${protocol}'`, { file: name, data: { protocol } });
  throw new UnsupportedError(`The '${protocol}' protocol is not supported by vdisk`, { file: name, data: { protocol } });
}

/**
 * The name without its local protocol prefix; a rest that would read as a
 * protocol again (`file:my:disk`) gets `./` (bdrv_parse_filename_strip_prefix).
 */
function strippedPath(name: string, protocol: string): string {
  const rest = name.slice(protocol.length + 1);
  return protocolPrefix(rest) === undefined ? rest : `./${rest}`;
}

/** The path a name shows once opened: qemu names a `file:x` node `x`. Other names are shown as they are. */
export function shownLocalName(name: string): string {
  const protocol = protocolPrefix(name);
  return protocol !== undefined && LOCAL_PROTOCOLS.has(protocol) ? strippedPath(name, protocol) : name;
}
