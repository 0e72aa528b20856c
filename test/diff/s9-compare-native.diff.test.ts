/**
 * compare's native path: where both images hold a chunk as plain data in
 * local files, the chunk is read and compared off the main thread in 64 KiB
 * pieces (FileStore.compareWith). The first difference it reports must be
 * the one qemu-img reports, wherever it falls: the first sector, both sides
 * of a piece and of a chunk boundary, the image's last partial sector; the
 * same with the native module off; and a native comparison that fails falls
 * back to reading the chunk, so the result (and a read error's wording)
 * stays the ordinary path's.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { compare } from '../../src/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';
import type { ByteStore } from '../../src/io/byte-store.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-compare-native-');
after(() => dir.cleanup());
const at = (n: string): string => join(dir.path, n);
const K = 1024;
const M = 1024 * K;
/** Not a whole number of sectors, so the last sector is partial. */
const SIZE = 5 * M + 1000;

function content(): Buffer {
  const next = rng(9);
  const b = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4096) b.fill(1 + Math.floor(next() * 250), i, Math.min(SIZE, i + 4096));
  // A hole of zeros in the middle, so the qcow2 copy has zero clusters there.
  b.fill(0, 3 * M, 3 * M + 128 * K);
  return b;
}

function same(args: readonly string[], env: NodeJS.ProcessEnv = {}): void {
  const theirs = qemuImg(args);
  const ours = vdisk(args, { env });
  const what = `${args.join(' ')} ${JSON.stringify(env)}`;
  assert.equal(ours.stdout, theirs.stdout, `stdout of ${what}`);
  assert.equal(ours.stderr, asVdisk(theirs.stderr), `stderr of ${what}`);
  assert.equal(ours.status, theirs.status, `exit status of ${what}`);
}

describe('compare: chunks compared off the main thread report the first difference as qemu-img does', () => {
  it('a changed byte anywhere: sector 0, piece and chunk edges, the last partial sector (raw and qcow2, both orders)', (t) => {
    if (!requireQemu(t)) return;
    const base = content();
    writeFileSync(at('a.raw'), base);
    qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', at('a.raw'), at('a.qcow2')]);
    same(['compare', at('a.raw'), at('a.qcow2')]);
    const offsets = [0, 511, 512, 64 * K - 1, 64 * K, 64 * K + 513, M + 7, 2 * M - 1, 2 * M, 2 * M + 64 * K, 3 * M + 64 * K, 4 * M + 3, SIZE - 1000, SIZE - 1];
    for (const off of offsets) {
      const b = Buffer.from(base);
      b[off] = (b[off]! + 1) & 0xff;
      // Two differences: the first one counts.
      if (off + 70 * K < SIZE) b[off + 70 * K] = (b[off + 70 * K]! + 1) & 0xff;
      writeFileSync(at('b.raw'), b);
      for (const env of [{}, { VDISK_NO_NATIVE: '1' }]) {
        same(['compare', at('a.raw'), at('b.raw')], env);
        same(['compare', at('a.qcow2'), at('b.raw')], env);
        same(['compare', '-f', 'raw', '-F', 'qcow2', at('b.raw'), at('a.qcow2')], env);
      }
    }
    same(['compare', '-s', at('a.raw'), at('a.qcow2')]);
  });

  it('identical images of many chunks compare identical, with progress to the end', (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(at('big.raw'), Buffer.alloc(24 * M, 0x5a));
    qemuImgOk(['convert', '-f', 'raw', '-O', 'qcow2', at('big.raw'), at('big.qcow2')]);
    copyFileSync(at('big.raw'), at('big2.raw'));
    same(['compare', at('big.raw'), at('big2.raw')]);
    same(['compare', at('big.qcow2'), at('big.raw')]);
    const progress = vdisk(['compare', '-p', at('big.qcow2'), at('big.raw')]);
    assert.match(progress.stdout, /\(100\.00\/100%\)/);
  });
});

/** A store whose native comparison always fails: compare must read the chunk instead. */
class FailingCompareStore extends MemoryStore {
  calls = 0;
  compareWith(_offset: number, other: ByteStore): Promise<number> | undefined {
    if (!(other instanceof FailingCompareStore)) return undefined;
    this.calls++;
    return Promise.reject(new Error('simulated native failure'));
  }
}

describe('compare: a native comparison that fails falls back to reading', () => {
  it('finds the same first difference through the ordinary reads', async () => {
    const a = new FailingCompareStore('a', new Uint8Array(3 * M).fill(7));
    const bytes = new Uint8Array(3 * M).fill(7);
    bytes[2 * M + 4097] = 8;
    const b = new FailingCompareStore('b', bytes);
    const result = await compare(a, b, { formatA: 'raw', formatB: 'raw' });
    assert.equal(result.identical, false);
    assert.equal(result.offset, 2 * M + 4096);
    assert.ok(a.calls > 0, 'the native path was tried');
    const same = await compare(new FailingCompareStore('a', new Uint8Array(3 * M).fill(7)), new FailingCompareStore('a', new Uint8Array(3 * M).fill(7)), { formatA: 'raw', formatB: 'raw' });
    assert.equal(same.identical, true);
  });
});
