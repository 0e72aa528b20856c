import { InvalidArgumentError } from '../core/errors.js';

/**
 * The driver names qemu-img 7.2 (Debian's build) knows: its BlockdevDriver
 * enum, which qcow2's and qed's create options check `backing_fmt` against
 * ("Parameter 'backing-fmt' does not accept value 'x'") and which qcow's
 * create asks bdrv_find_format for ("unrecognized backing format 'x'").
 * Protocol and filter drivers count: `-F file` or `-F nbd` passes the check.
 */
export const BLOCKDEV_DRIVERS: ReadonlySet<string> = new Set([
  'blkdebug', 'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-before-write', 'copy-on-read',
  'dmg', 'file', 'ftp', 'ftps', 'gluster', 'host_cdrom', 'host_device', 'http', 'https', 'iscsi', 'luks', 'nbd', 'nfs',
  'null-aio', 'null-co', 'nvme', 'parallels', 'preallocate', 'qcow', 'qcow2', 'qed', 'quorum', 'raw', 'rbd', 'replication',
  'snapshot-access', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
]);

/** The names bdrv_find_format knows: those, and `iser` (the iSCSI driver's second name, not in the enum). */
export const DRIVER_NAMES: ReadonlySet<string> = new Set([...BLOCKDEV_DRIVERS, 'iser']);

/** The QAPI check of a `backing-fmt` create option (qcow2's and qed's), in qemu's words. */
export function checkBackingFormatOption(value: unknown): void {
  if (typeof value === 'string' && !BLOCKDEV_DRIVERS.has(value)) throw new InvalidArgumentError(`Parameter 'backing-fmt' does not accept value '${value}'`);
}
