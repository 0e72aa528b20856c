/**
 * Where guest clusters live (qed_find_cluster): the L1 entry of the
 * request's L2 span, then runs of L2 entries of one kind — unallocated
 * (0), zero (1) or data at contiguous host offsets. An entry that is
 * neither and not a valid cluster offset fails the request with EINVAL,
 * as in qemu.
 */
import { CorruptImageError } from '../../core/errors.js';
import { isClusterOffsetValid, isTableOffsetValid, QED_UNALLOCATED, QED_ZERO_CLUSTER } from './header.js';
import type { QedState } from './open.js';

/** What a run of guest clusters is. */
export type ClusterKind = 'l1' | 'l2' | 'zero' | 'found';

/** A run starting at `pos`, all of one kind, inside one L2 span. */
export interface ClusterRun {
  readonly kind: ClusterKind;
  /** Guest offset of the run's first byte. */
  readonly pos: number;
  /** Bytes from `pos`. */
  readonly length: number;
  /** Host offset of the byte at `pos` ('found' only). */
  readonly hostOffset: number;
  /** The L2 table's host offset (0 for 'l1'). */
  readonly l2: number;
}

function invalid(s: QedState, what: string, value: number): CorruptImageError {
  return new CorruptImageError('Invalid argument', { file: s.filename, data: { reason: `${what} 0x${value.toString(16)} is not a valid QED offset` } });
}

/** The L2 table's offset for guest offset `pos` (0: none allocated). */
async function l2For(s: QedState, pos: number): Promise<number> {
  const l2 = await s.tables.get(s.l1Offset, Math.floor(pos / s.g.l2Span));
  if (l2 !== QED_UNALLOCATED && !isTableOffsetValid(s.g, s.fileSize, l2)) throw invalid(s, 'L2 table offset', l2);
  return l2;
}

/**
 * The run of same-kind clusters at `pos`, at most `length` bytes and never
 * past the L2 span's end.
 *
 * @throws {CorruptImageError} "Invalid argument" for an offset qemu would refuse
 */
export async function findRun(s: QedState, pos: number, length: number): Promise<ClusterRun> {
  const { g } = s;
  const spanEnd = (Math.floor(pos / g.l2Span) + 1) * g.l2Span;
  const len = Math.min(length, spanEnd - pos);
  const l2 = await l2For(s, pos);
  if (l2 === QED_UNALLOCATED) return { kind: 'l1', pos, length: len, hostOffset: 0, l2 };
  const inCluster = pos % g.clusterSize;
  const wanted = Math.ceil((inCluster + len) / g.clusterSize);
  let index = Math.floor((pos % g.l2Span) / g.clusterSize);
  let run = await s.tables.run(l2, index, wanted);
  const first = run.entries[0] as number;
  const kind: ClusterKind = first === QED_UNALLOCATED ? 'l2' : first === QED_ZERO_CLUSTER ? 'zero' : 'found';
  if (kind === 'found' && !isClusterOffsetValid(g, s.fileSize, first)) throw invalid(s, 'cluster offset', first);
  let n = 0;
  let expect = first;
  // each pass walks one page of the table; a run may continue into the next page
  for (;;) {
    let i = 0;
    for (; i < run.entries.length && n < wanted; i++, n++) {
      const e = run.entries[i] as number;
      if (kind === 'found' ? e !== expect : e !== first) break;
      if (kind === 'found') expect += g.clusterSize;
    }
    if (i < run.entries.length || n >= wanted) break;
    index = run.first + run.entries.length;
    run = await s.tables.run(l2, index, wanted - n);
  }
  const bytes = Math.min(len, n * g.clusterSize - inCluster);
  return { kind, pos, length: bytes, hostOffset: kind === 'found' ? first + inCluster : 0, l2 };
}
