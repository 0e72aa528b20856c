/**
 * Hostile qcow (v1) headers: every field qcow_open checks (version,
 * size, cluster_bits, l2_bits, crypt_method, the L1 table's size and
 * place, the backing file name's length and place), set to values past
 * its bounds. vdisk must refuse (or accept) each as qemu-img does, with
 * its message and exit status, before sizing anything from it.
 *
 * ```
 *  0x00 magic 'QFI\xfb'          0x18 size u64
 *  0x04 version u32              0x20 cluster_bits u8, 0x21 l2_bits u8
 *  0x08 backing_file_offset u64  0x24 crypt_method u32
 *  0x10 backing_file_size u32    0x28 l1_table_offset u64
 * ```
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qcow-header-');
after(() => dir.cleanup());

type Field = 'magic' | 'version' | 'bfo' | 'bfs' | 'size' | 'cb' | 'l2' | 'crypt' | 'l1o';
const FIELDS: Record<Field, [number, 1 | 4 | 8]> = { magic: [0, 4], version: [4, 4], bfo: [8, 8], bfs: [16, 4], size: [24, 8], cb: [32, 1], l2: [33, 1], crypt: [36, 4], l1o: [40, 8] };

function patched(name: string, changes: Partial<Record<Field, bigint>>): void {
  const buf = readFileSync(join(dir.path, 'base.qcow'));
  for (const [f, value] of Object.entries(changes) as [Field, bigint][]) {
    const [off, width] = FIELDS[f];
    if (width === 8) buf.writeBigUInt64BE(value, off);
    else if (width === 4) buf.writeUInt32BE(Number(value), off);
    else buf.writeUInt8(Number(value), off);
  }
  writeFileSync(join(dir.path, name), buf);
}

const CASES: [string, Partial<Record<Field, bigint>>][] = [
  ['bad magic', { magic: 0n }],
  ['version 2', { version: 2n }],
  ['version 5', { version: 5n }],
  ['size 0', { size: 0n }],
  ['size 1', { size: 1n }],
  ['size 2 (no whole sector)', { size: 2n }],
  ['size 1000', { size: 1000n }],
  ['cluster_bits 8', { cb: 8n }],
  ['cluster_bits 17', { cb: 17n }],
  ['l2_bits 5', { l2: 5n }],
  ['l2_bits 14', { l2: 14n }],
  ['crypt_method 2', { crypt: 2n }],
  ['crypt_method 1', { crypt: 1n }],
  ['size 2^63-1', { size: 0x7fffffffffffffffn }],
  ['size 2^64-1', { size: 0xffffffffffffffffn }],
  ['L1 table too large for 64k clusters', { cb: 16n, l2: 13n, size: 0x4000000000000000n }],
  ['L1 offset near 2^63', { l1o: 0x7ffffffffffffff0n }],
  ['L1 offset near 2^64', { l1o: 0xfffffffffffffff0n }],
  ['L1 offset past the file', { l1o: 0x100000000000n }],
  ['backing name 1024 bytes', { bfo: 0x30n, bfs: 1024n }],
  ['backing name 1023 bytes of zeros', { bfo: 0x30n, bfs: 1023n }],
  ['backing name past 2^63', { bfo: 0x7ffffffffffffff0n, bfs: 10n }],
  ['backing name past the file', { bfo: 0x100000n, bfs: 10n }],
];

describe('qcow header fields are bounded as qemu-img bounds them', () => {
  before(() => {
    if (hasQemu) qemuImgOk(['create', '-f', 'qcow', 'base.qcow', '10M'], { cwd: dir.path });
  });

  CASES.forEach(([what, changes], i) => {
    it(`${what}: info as qemu-img's (probed and with -f qcow)`, (t) => {
      if (!requireQemu(t)) return;
      const name = `h${i}.qcow`;
      patched(name, changes);
      for (const fmt of [[], ['-f', 'qcow']]) {
        for (const cmd of [['info', ...fmt, name], ['info', '--output=json', ...fmt, name]]) {
          const theirs = qemuImg(cmd, { cwd: dir.path });
          const ours = vdisk(cmd, { cwd: dir.path, timeoutMs: 10_000 });
          assert.equal(ours.status, theirs.status, `${cmd.join(' ')}: ${ours.stderr}`);
          assert.equal(ours.stderr, asVdisk(theirs.stderr), cmd.join(' '));
          assert.equal(ours.stdout, theirs.stdout, cmd.join(' '));
        }
      }
    });
  });

  it('sizes past 2^53 are refused as too large for vdisk (a typed EUNSUPPORTED), not read wrongly', (t) => {
    if (!requireQemu(t)) return;
    patched('huge.qcow', { cb: 16n, l2: 13n, size: 0x40000000000000n });
    const ours = vdisk(['info', 'huge.qcow'], { cwd: dir.path });
    assert.equal(ours.status, 1);
    assert.match(ours.stderr, /is above 9007199254740991 bytes, the largest vdisk handles/);
  });
});
