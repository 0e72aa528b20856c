/**
 * VHD images with damaged headers: a bad checksum in the footer copy at the
 * start of a dynamic image fails as qemu-img words it ("Incorrect header
 * checksum", vdisk's detail kept in the SDK error's `data.finding`); a bad
 * checksum in the dynamic disk header is not checked by qemu's vpc_open, so
 * the image opens (vdisk refused it). With them: a damaged end footer, a BAT
 * entry past the end and one shared by two blocks, no end footer, no cookie.
 */
import { describe, it, after } from 'node:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { hasQemuIo, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s14-vpc-headers-');
after(() => dir.cleanup());
const cwd = dir.path;

const dynamicHeaderAt = (d: Buffer): number => Number(d.readBigUInt64BE(16));
const batAt = (d: Buffer): number => Number(d.readBigUInt64BE(dynamicHeaderAt(d) + 16));
const flip = (d: Buffer, at: number): Buffer => {
  d.writeUInt8(d.readUInt8(at) ^ 0xff, at);
  return d;
};

const MODES: Record<string, (d: Buffer) => Buffer> = {
  'end-footer-sum': (d) => flip(d, d.length - 512 + 64),
  'start-footer-sum': (d) => flip(d, 64),
  'dynamic-header-sum': (d) => flip(d, dynamicHeaderAt(d) + 36),
  'bat-past-end': (d) => {
    d.writeUInt32BE(0x7fffffff, batAt(d));
    return d;
  },
  'bat-shared': (d) => {
    d.copy(d, batAt(d) + 4, batAt(d), batAt(d) + 4);
    return d;
  },
  'no-end-footer': (d) => d.subarray(0, d.length - 512),
  'no-cookie': (d) => {
    d.write('xxxxxxxx', 0, 'latin1');
    return d;
  },
};

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'vpc', 'base.vhd', '8M'], { cwd });
  if (hasQemuIo) qemuIo(join(cwd, 'base.vhd'), ['write -P 1 0 64k', 'write -P 2 3M 64k'], 'vpc');
  const base = readFileSync(join(cwd, 'base.vhd'));
  for (const [name, mode] of Object.entries(MODES)) writeFileSync(join(cwd, `${name}.vhd`), mode(Buffer.from(base)));
}

describe('VHD images with damaged headers, as qemu-img', () => {
  it('open, fail and read as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    assertCasesMatchQemu(
      Object.keys(MODES).flatMap((n) => [['info', `${n}.vhd`], ['check', `${n}.vhd`], ['map', '--output=json', `${n}.vhd`], ['convert', '-O', 'raw', `${n}.vhd`, 'out.raw']]),
      { cwd, fresh },
    );
  });
});
