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
export const VPC_BLOCK_SIZE = 0x200000;
const HEADER_AT = 512;
/** Where the BAT of a new dynamic disk starts (after the footer copy and the dynamic header). */
export const VPC_BAT_AT = 1536;

function subformatOf(options: CreateRequest['options']): 'dynamic' | 'fixed' {
  const v = options.get('subformat') ?? 'dynamic';
  if (v !== 'dynamic' && v !== 'fixed') throw new InvalidArgumentError(`Parameter 'subformat' does not accept value '${String(v)}'`);
  return v;
}

/** What a new VHD is made of, before any byte is written (create and the stream share it). */
export interface VpcLayout {
  readonly subformat: 'dynamic' | 'fixed';
  /** Guest bytes: the requested size in sectors, rounded up to a CHS size unless `force_size`. */
  readonly size: number;
  /** The footer (also the copy at offset 0 of a dynamic disk). */
  readonly footer: Uint8Array;
  /** Dynamic disks: BAT entries, and the BAT's bytes on disk (whole sectors). */
  readonly entries: number;
  readonly batBytes: number;
}

/** Sizes and footer of a new VHD of `size` bytes with these options, as `qemu-img create -f vpc` makes them. */
export function vpcLayout(size: number, options: CreateRequest['options']): VpcLayout {
  const subformat = subformatOf(options);
  const forceSize = options.get('force_size') === true;
  const { totalSectors, chs } = roundedImageSize(size, forceSize);
  const footer = serializeFooter({
    dataOffset: subformat === 'dynamic' ? HEADER_AT : undefined,
    timestamp: Math.floor(Date.now() / 1000) - VHD_TIMESTAMP_BASE,
    creatorApp: forceSize ? 'qem2' : 'qemu',
    size: totalSectors * 512,
    ...chs,
    diskType: subformat === 'dynamic' ? VHD_TYPE.dynamic : VHD_TYPE.fixed,
    uniqueId: randomBytes(16),
  });
  const entries = Math.ceil(totalSectors / (VPC_BLOCK_SIZE / 512));
  return { subformat, size: totalSectors * 512, footer, entries, batBytes: Math.ceil((entries * 4) / 512) * 512 };
}

/** The bytes before the first block of a dynamic disk: footer copy, dynamic header, BAT (every block unallocated). */
export function dynamicHead(layout: VpcLayout): { head: Uint8Array; bat: Uint8Array } {
  const head = new Uint8Array(VPC_BAT_AT);
  head.set(layout.footer, 0);
  head.set(serializeDynamicHeader(VPC_BAT_AT, layout.entries, VPC_BLOCK_SIZE), HEADER_AT);
  return { head, bat: new Uint8Array(layout.batBytes).fill(0xff) };
}

/** Writes a new VHD as `qemu-img create -f vpc` does. */
export async function createVpc(store: ByteStore, request: CreateRequest): Promise<void> {
  const layout = vpcLayout(request.size, request.options);
  const { size, footer } = layout;
  if (layout.subformat === 'fixed') {
    await store.truncate(size + footer.length);
    // The file protocol allocates the first 4 KiB on create, as qemu-img's does (same disk usage).
    if (size > 0) await store.write(0, new Uint8Array(Math.min(size, 4096)));
    await store.write(size, footer);
    return;
  }
  const { head, bat } = dynamicHead(layout);
  await store.write(0, head);
  if (bat.length > 0) await store.write(VPC_BAT_AT, bat);
  await store.write(VPC_BAT_AT + bat.length, footer);
}
