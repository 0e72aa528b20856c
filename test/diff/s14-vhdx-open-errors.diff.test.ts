/**
 * A VHDX image whose region table, metadata table or BAT is malformed:
 * vhdx_open fails with a bare errno, which qemu-img words as "Could not open
 * 'F': Could not open 'F': Invalid argument" (or "Operation not supported"
 * for required items it does not know and logical sectors other than 512
 * bytes), and reports region overlaps first as "VHDX region A-B overlaps
 * with region C-D". vdisk printed its own explanations (kept in the SDK
 * error's `data.finding`).
 */
import { describe, it, after } from 'node:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { crc32cWithZeroField } from '../../src/formats/vhdx/crc32c.js';
import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-vhdx-open-errors-');
after(() => dir.cleanup());
const cwd = dir.path;

const RT1 = 192 * 1024;
const RT2 = 256 * 1024;
const GUID = {
  fileParameters: 'caa16737fa364d43b3b633f0aa44e76b',
  logicalSector: '8141bf1da96f4709ba47f233a8faab5f',
};

/** A GUID's on-disk bytes (first three fields little-endian). */
function guidBytes(hex: string): Uint8Array {
  const b = Buffer.from(hex, 'hex');
  return Uint8Array.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

type Mode = (d: Buffer) => void;

const sealRegionTables = (d: Buffer): void => {
  for (const o of [RT1, RT2]) d.writeUInt32LE(crc32cWithZeroField(d.subarray(o, o + 65536), 4), o + 4);
};
const metadataOffset = (d: Buffer): number => Number(d.readBigUInt64LE(RT1 + 16 + 32 + 16));
/** The file offset of a metadata item's value. */
function itemAt(d: Buffer, guid: string): number {
  const meta = metadataOffset(d);
  const want = guidBytes(guid);
  for (let i = 0; i < d.readUInt16LE(meta + 10); i++) {
    const e = meta + 32 + i * 32;
    if (d.subarray(e, e + 16).equals(want)) return meta + d.readUInt32LE(e + 16);
  }
  throw new Error(`no metadata item ${guid}`);
}

const MODES: Record<string, Mode> = {
  'region-signature': (d) => {
    d.write('xxxx', RT1, 'latin1');
    d.write('xxxx', RT2, 'latin1');
  },
  'region-count': (d) => {
    for (const o of [RT1, RT2]) d.writeUInt32LE(3000, o + 8);
    sealRegionTables(d);
  },
  'region-required': (d) => {
    for (const o of [RT1, RT2]) {
      const e = o + 16 + 64;
      d.fill(0x11, e, e + 16);
      d.writeBigUInt64LE(8n << 20n, e + 16);
      d.writeUInt32LE(1 << 20, e + 24);
      d.writeUInt32LE(1, e + 28);
      d.writeUInt32LE(3, o + 8);
    }
    sealRegionTables(d);
  },
  'region-overlap': (d) => {
    for (const o of [RT1, RT2]) {
      d.copy(d, o + 16 + 64, o + 16, o + 48);
      d.writeUInt32LE(3, o + 8);
    }
    sealRegionTables(d);
  },
  'metadata-signature': (d) => d.write('xxxxxxxx', metadataOffset(d), 'latin1'),
  'metadata-missing-item': (d) => {
    const meta = metadataOffset(d);
    d.writeUInt16LE(d.readUInt16LE(meta + 10) - 1, meta + 10);
  },
  'block-size': (d) => d.writeUInt32LE(3 << 20, itemAt(d, GUID.fileParameters)),
  'logical-sector': (d) => d.writeUInt32LE(1024, itemAt(d, GUID.logicalSector)),
  'parent-without-locator': (d) => {
    const at = itemAt(d, GUID.fileParameters) + 4;
    d.writeUInt32LE(d.readUInt32LE(at) | 2, at);
  },
  'bat-over-metadata': (d) => {
    const bat = Number(d.readBigUInt64LE(RT1 + 16 + 16));
    const entry = d.readBigUInt64LE(bat);
    d.writeBigUInt64LE((entry & 7n) | (3n << 20n), bat);
  },
};

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'vhdx', 'base.vhdx', '10M'], { cwd });
  if (hasQemuIo) qemuIo(join(cwd, 'base.vhdx'), ['write -P 1 0 2M'], 'vhdx');
  const base = readFileSync(join(cwd, 'base.vhdx'));
  for (const [name, mode] of Object.entries(MODES)) {
    const d = Buffer.from(base);
    mode(d);
    writeFileSync(join(cwd, `${name}.vhdx`), d);
  }
}

describe('malformed VHDX structures, as qemu-img', () => {
  it('fails the open in qemu-img 7.2\'s words', (t) => {
    if (!requireQemu(t)) return;
    const names = Object.keys(MODES).filter((n) => hasQemuIo || n !== 'bat-over-metadata');
    assertCasesMatchQemu(
      names.flatMap((n) => [['info', `${n}.vhdx`], ['check', `${n}.vhdx`]]),
      { cwd, fresh },
    );
  });
});
