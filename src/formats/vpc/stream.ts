/**
 * vpc (VHD), streamed: the layout `qemu-img create -f vpc` and a following
 * convert give, produced strictly in order. Fixed: every guest byte (the
 * CHS-rounded size), then the footer. Dynamic: footer copy, dynamic
 * header, BAT, then each block holding data in guest order (its sector
 * bitmap, all set as QEMU sets it, then the block), then the footer.
 */
import type { StreamPlan, StreamWriter, StreamWriterRequest } from '../driver.js';
import { checkProtocolCreateOptions } from '../protocol-options.js';
import { dynamicHead, VPC_BAT_AT, VPC_BLOCK_SIZE, vpcLayout, type VpcLayout } from './create.js';

/** Sector bitmap of a 2 MiB block: 4096 bits, one sector. */
const BITMAP_BYTES = Math.ceil(VPC_BLOCK_SIZE / 512 / 8 / 512) * 512;

/** Zeros, in pieces of at most one block (fresh buffers: the consumer may keep them). */
function* zeros(n: number): Generator<Uint8Array> {
  for (let left = n; left > 0; left -= VPC_BLOCK_SIZE) yield new Uint8Array(Math.min(left, VPC_BLOCK_SIZE));
}

/** Fixed: the guest bytes cut or zero-padded to the rounded size, then the footer. */
async function* emitFixed(layout: VpcLayout, data: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let at = 0;
  for await (const unit of data) {
    const n = Math.max(0, Math.min(unit.length, layout.size - at));
    if (n > 0) yield n === unit.length ? unit : unit.subarray(0, n);
    at += n;
  }
  yield* zeros(layout.size - at);
  yield layout.footer;
}

/** Dynamic: head, BAT (data blocks stored one after another behind it), blocks with their bitmaps, footer. */
async function* emitDynamic(layout: VpcLayout, plan: StreamPlan, data: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { head, bat } = dynamicHead(layout);
  const first = VPC_BAT_AT + layout.batBytes;
  const v = new DataView(bat.buffer);
  plan.units.forEach((block, k) => v.setUint32(block * 4, (first + k * (BITMAP_BYTES + VPC_BLOCK_SIZE)) / 512));
  yield head;
  yield bat;
  for await (const unit of data) {
    yield new Uint8Array(BITMAP_BYTES).fill(0xff);
    yield unit;
  }
  yield layout.footer;
}

/**
 * A VHD in order. The size is rounded as create rounds it (`force_size`
 * keeps it); the footer (timestamp, unique ID) is made once, so the
 * length and the bytes agree.
 */
export function vpcStreamWriter(request: StreamWriterRequest): StreamWriter {
  checkProtocolCreateOptions(request.options, new Set());
  const layout = vpcLayout(request.size, request.options);
  if (layout.subformat === 'fixed') {
    return {
      unit: VPC_BLOCK_SIZE,
      storesEveryUnit: true,
      length: () => layout.size + layout.footer.length,
      emit: (_plan, data) => emitFixed(layout, data),
    };
  }
  return {
    unit: VPC_BLOCK_SIZE,
    length: (plan) => VPC_BAT_AT + layout.batBytes + plan.units.length * (BITMAP_BYTES + VPC_BLOCK_SIZE) + layout.footer.length,
    emit: (plan, data) => emitDynamic(layout, plan, data),
  };
}
