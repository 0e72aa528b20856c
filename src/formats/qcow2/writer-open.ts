/**
 * Opening a qcow2 image for writing (QEMU's qcow2_do_open write path): the
 * header brought up to date, the refcount structures loaded, a dirty image
 * refused, then the writer.
 */
import { UnsupportedError } from '../../core/errors.js';
import { rewriteHeader } from './backing.js';
import { HEADER_FIELD } from './header.js';
import { AUTOCLEAR_KNOWN, COMPAT_LAZY_REFCOUNTS, INCOMPAT_DIRTY } from './layout.js';
import { parseRefcountTable, Refcounts } from './refcount.js';
import type { Qcow2State } from './state.js';
import { Qcow2Writer } from './write.js';

/**
 * The refcount structures as the header names them now, with the file's
 * current end noted (see Refcounts.usedEnd). Moving the table rewrites the
 * header's two fields in one write.
 */
export async function loadRefcounts(s: Qcow2State): Promise<Refcounts> {
  const h = s.header;
  const raw = new Uint8Array(h.refcountTableClusters * s.g.clusterSize);
  await s.store.read(h.refcountTableOffset, raw);
  const header = {
    offset: h.refcountTableOffset,
    clusters: h.refcountTableClusters,
    async update(offset: number, clusters: number): Promise<void> {
      const b = new Uint8Array(12);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, BigInt(offset));
      v.setUint32(8, clusters);
      await s.store.write(HEADER_FIELD.refcountTableOffset, b);
      h.refcountTableOffset = offset;
      h.refcountTableClusters = clusters;
    },
  };
  const refcounts = new Refcounts(s.store, s.g, parseRefcountTable(raw, s.g), header);
  refcounts.noteFileEnd(await s.store.size());
  return refcounts;
}

/**
 * What every read/write open does first, checks included: autoclear bits
 * QEMU does not know are cleared, and a bitmaps extension whose autoclear
 * bit was clear (stale bitmaps, ignored) is dropped, in one header rewrite.
 */
export async function updateHeaderOnOpen(s: Qcow2State): Promise<void> {
  const h = s.header;
  if ((h.autoclear & ~BigInt(AUTOCLEAR_KNOWN)) === 0n && !h.bitmapsIgnored) return;
  h.autoclear &= BigInt(AUTOCLEAR_KNOWN);
  h.bitmapsIgnored = false;
  await rewriteHeader(s);
}

/** Builds the writer of a read/write open: loads refcounts. */
export async function createWriter(s: Qcow2State): Promise<Qcow2Writer> {
  const h = s.header;
  if (h.incompatible & BigInt(INCOMPAT_DIRTY)) {
    throw new UnsupportedError("qcow2 image has the dirty bit set (refcounts may be stale); repair it (check with repair: 'all') before writing");
  }
  const refcounts = await loadRefcounts(s);
  refcounts.lazy = (h.compatible & BigInt(COMPAT_LAZY_REFCOUNTS)) !== 0n;
  s.refcounts = refcounts;
  return new Qcow2Writer(s, refcounts);
}
