/**
 * `create -f vpc`: options in QEMU's list order, the size rounded up to a
 * CHS-representable size unless `force_size=on`, and QEMU's on-disk layout
 * (dynamic: footer copy at 0, dynamic header at 512, BAT at 1536, footer
 * after the BAT; fixed: zeros then the footer).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { randomBytes } from '../../core/random.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { serializeDynamicHeader } from './dynamic-header.js';
import { serializeFooter, VHD_TIMESTAMP_BASE, VHD_TYPE } from './footer.js';
import { roundedImageSize } from './geometry.js';

/** QEMU's vpc create options, in its list order (none has a printed default). */
export const VPC_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'subformat', type: 'string', help: 'Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} ' },
  {
    name: 'force_size',
    type: 'bool',
    help: 'Force disk size calculation to use the actual size specified, rather than using the nearest CHS-based calculation',
  },
];

/** Block size of the dynamic disks QEMU creates. */
const BLOCK_SIZE = 0x200000;
const HEADER_AT = 512;
const BAT_AT = 1536;

function subformatOf(options: CreateRequest['options']): 'dynamic' | 'fixed' {
  const v = options.get('subformat') ?? 'dynamic';
  if (v !== 'dynamic' && v !== 'fixed') throw new InvalidArgumentError(`Parameter 'subformat' does not accept value '${String(v)}'`);
  return v;
}

/** Writes a new VHD as `qemu-img create -f vpc` does. */
export async function createVpc(store: ByteStore, request: CreateRequest): Promise<void> {
  const subformat = subformatOf(request.options);
  const forceSize = request.options.get('force_size') === true;
  const { totalSectors, chs } = roundedImageSize(request.size, forceSize);
  const size = totalSectors * 512;
  const footer = serializeFooter({
    dataOffset: subformat === 'dynamic' ? HEADER_AT : undefined,
    timestamp: Math.floor(Date.now() / 1000) - VHD_TIMESTAMP_BASE,
    creatorApp: forceSize ? 'qem2' : 'qemu',
    size,
    ...chs,
    diskType: subformat === 'dynamic' ? VHD_TYPE.dynamic : VHD_TYPE.fixed,
    uniqueId: randomBytes(16),
  });
  if (subformat === 'fixed') {
    await store.truncate(size + footer.length);
    // The file protocol allocates the first 4 KiB on create, as qemu-img's does (same disk usage).
    if (size > 0) await store.write(0, new Uint8Array(Math.min(size, 4096)));
    await store.write(size, footer);
    return;
  }
  const entries = Math.ceil(totalSectors / (BLOCK_SIZE / 512));
  const batBytes = Math.ceil((entries * 4) / 512) * 512;
  await store.write(0, footer);
  await store.write(HEADER_AT, serializeDynamicHeader(BAT_AT, entries, BLOCK_SIZE));
  if (batBytes > 0) await store.write(BAT_AT, new Uint8Array(batBytes).fill(0xff));
  await store.write(BAT_AT + batBytes, footer);
}
