/**
 * vpc (fixed, dynamic), vhdx and vmdk streamOptimized images streamed out
 * (convertToStream), checked against qemu-img: the bytes produced are the
 * length promised and `measure --exact`; qemu-img compares the image equal
 * to its source, checks it clean (vhdx, vmdk) and sizes it as it sizes its
 * own `convert -O fmt` of the same source; vdisk's info, check and compare
 * accept it too.
 */
import assert from 'node:assert/strict';
import { closeSync, createWriteStream, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../src/core/errors.js';
import { convertToStream } from '../../src/jobs/convert-stream.js';
import { measure } from '../../src/jobs/measure.js';
import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-stream-formats-');
after(() => dir.cleanup());
const at = (name: string): string => join(dir.path, name);

const MiB = 1024 * 1024;

/** Sources: data, written zeros, holes, data across unit boundaries and in a last partial unit. */
const SOURCES = ['mixed.raw', 'odd.raw', 'full.raw', 'empty.raw'] as const;

/** An odd-sized raw file written by hand (qemu-io would round it to sectors). */
function oddRaw(path: string, size: number, pieces: readonly [number, number, number][]): void {
  const fd = openSync(path, 'w');
  try {
    for (const [offset, length, byte] of pieces) writeSync(fd, new Uint8Array(length).fill(byte), 0, length, offset);
    writeSync(fd, new Uint8Array(1), 0, 1, size - 1);
  } finally {
    closeSync(fd);
  }
}

/** Streams `source` as `format` into a file; returns the promised length and the file's size. */
async function streamTo(source: string, format: string, options: string | undefined, out: string, sparseSize?: number): Promise<{ length: number; written: number }> {
  const o = await convertToStream(at(source), { targetFormat: format, options, sparseSize });
  await pipeline(o.stream, createWriteStream(out));
  return { length: o.length, written: statSync(out).size };
}

interface Target {
  readonly format: 'vpc' | 'vhdx' | 'vmdk';
  readonly options?: string;
}

const TARGETS: readonly Target[] = [
  { format: 'vpc' },
  { format: 'vpc', options: 'subformat=fixed' },
  { format: 'vpc', options: 'subformat=fixed,force_size=on' },
  { format: 'vpc', options: 'subformat=dynamic,force_size=on' },
  { format: 'vhdx' },
  { format: 'vhdx', options: 'block_size=1M,log_size=2M' },
  { format: 'vhdx', options: 'block_state_zero=off,block_size=2M' },
  { format: 'vhdx', options: 'subformat=fixed,block_size=1M' },
  { format: 'vmdk', options: 'subformat=streamOptimized' },
  { format: 'vmdk', options: 'adapter_type=lsilogic,hwversion=6,toolsversion=10240' },
];

/** Sources a target cannot hold: a VMDK of capacity 0 reads as a descriptor file; qemu cannot open an empty fixed VHD. */
function skipped(source: string, t: Target): boolean {
  return source === 'empty.raw' && (t.format === 'vmdk' || (t.format === 'vpc' && t.options?.includes('fixed') === true));
}

function virtualSize(file: string, format: string): number {
  return (JSON.parse(qemuImgOk(['info', '--output=json', '-f', format, file])) as { 'virtual-size': number })['virtual-size'];
}

describe('stream-formats: vpc, vhdx and vmdk streamed out', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'raw', at('mixed.raw'), '11M']);
    qemuIo(at('mixed.raw'), ['write -P 1 0 100k', 'write -z 1M 1M', 'write -P 2 2040k 40k', 'write -P 3 6M 64k', 'write -P 4 10M 1M'], 'raw');
    oddRaw(at('odd.raw'), 3 * MiB + 12345, [
      [1000, 3000, 7],
      [2 * MiB - 10, 20, 8],
      [3 * MiB + 12000, 345, 9],
    ]);
    qemuImgOk(['create', '-q', '-f', 'raw', at('full.raw'), '3M']);
    qemuIo(at('full.raw'), ['write -P 0x5a 0 3M'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'raw', at('empty.raw'), '0']);
  });

  for (const t of TARGETS) {
    const label = `${t.format}${t.options ? ` -o ${t.options}` : ''}`;
    it(`${label}: length, measure --exact, qemu-img compare/check/info, vdisk info/check`, async (tc) => {
      if (!requireQemu(tc)) return;
      for (const source of SOURCES) {
        if (skipped(source, t)) continue;
        const name = `${source}.${t.format}.${TARGETS.indexOf(t)}`;
        const out = at(name);
        const what = `${source} -> ${label}`;
        const { length, written } = await streamTo(source, t.format, t.options, out);
        assert.equal(written, length, `${what}: bytes produced`);
        const exact = await measure(at(source), { targetFormat: t.format, options: t.options, exact: true });
        assert.equal(exact.exactSize, length, `${what}: measure exact`);
        const cmp = qemuImg(['compare', '-f', 'raw', '-F', t.format, at(source), out]);
        assert.equal(cmp.status, 0, `${what}: qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
        if (t.format !== 'vpc') {
          const check = JSON.parse(qemuImgOk(['check', '--output=json', '-f', t.format, out])) as Record<string, unknown>;
          for (const key of ['corruptions', 'leaks', 'check-errors']) assert.ok(!check[key], `${what}: qemu-img check ${JSON.stringify(check)}`);
          const own = vdisk(['check', '-f', t.format, out]);
          assert.equal(own.status, 0, `${what}: vdisk check: ${own.stdout}${own.stderr}`);
        }
        // The virtual size qemu gives the same conversion (vpc rounds it to a CHS geometry).
        const theirs = at(`${name}.qemu`);
        // A streamed VMDK is streamOptimized when no subformat is given.
        const opts = t.format === 'vmdk' && !t.options?.includes('subformat') ? `${t.options ? `${t.options},` : ''}subformat=streamOptimized` : t.options;
        qemuImgOk(['convert', '-f', 'raw', '-O', t.format, ...(opts ? ['-o', opts] : []), at(source), theirs]);
        assert.equal(virtualSize(out, t.format), virtualSize(theirs, t.format), `${what}: virtual size`);
        const info = JSON.parse(vdisk(['info', '--output=json', '-f', t.format, out]).stdout) as { 'virtual-size': number };
        assert.equal(info['virtual-size'], virtualSize(theirs, t.format), `${what}: vdisk info`);
        if (t.format === 'vmdk') {
          // The embedded descriptor carries create's options, as qemu-img's does.
          const desc = (file: string): string[] => readFileSync(file).subarray(512, 10752).toString('latin1').split('\n').filter((l) => l.startsWith('ddb.') || l.startsWith('createType'));
          assert.deepEqual(desc(out), desc(theirs), `${what}: descriptor`);
        }
        const own = vdisk(['compare', '-f', 'raw', '-F', t.format, at(source), out]);
        assert.equal(own.status, 0, `${what}: vdisk compare: ${own.stdout}${own.stderr}`);
      }
    });
  }

  it('-S 0 stores every unit, zeros included, and measure --exact follows', async (tc) => {
    if (!requireQemu(tc)) return;
    for (const t of [{ format: 'vpc' }, { format: 'vhdx', options: 'block_size=1M' }, { format: 'vmdk' }]) {
      const out = at(`every.${t.format}`);
      const { length, written } = await streamTo('mixed.raw', t.format, t.options, out, 0);
      assert.equal(written, length, t.format);
      const exact = await measure(at('mixed.raw'), { targetFormat: t.format, options: t.options, exact: true, sparseSize: 0 });
      assert.equal(exact.exactSize, length, t.format);
      const sparse = await measure(at('mixed.raw'), { targetFormat: t.format, options: t.options, exact: true });
      assert.ok(length > (sparse.exactSize ?? 0), `${t.format}: every unit stored`);
      assert.equal(qemuImg(['compare', '-f', 'raw', '-F', t.format, at('mixed.raw'), out]).status, 0, t.format);
    }
  });

  it('vhdx: payload blocks past a chunk of the BAT (its sector-bitmap entry between them) land where qemu reads them', async (tc) => {
    if (!requireQemu(tc)) return;
    // 1 MiB blocks: 4096 payload entries, then a sector-bitmap entry; the data straddles it.
    qemuImgOk(['create', '-q', '-f', 'raw', at('big.raw'), '4100M']);
    qemuIo(at('big.raw'), ['write -P 1 0 1M', 'write -P 2 4095M 3M', 'write -P 3 4099M 1M'], 'raw');
    const out = at('big.vhdx');
    const { length, written } = await streamTo('big.raw', 'vhdx', 'block_size=1M', out);
    assert.equal(written, length);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'vhdx', at('big.raw'), out]).status, 0);
    const check = JSON.parse(qemuImgOk(['check', '--output=json', '-f', 'vhdx', out])) as Record<string, unknown>;
    assert.ok(!check['corruptions'] && !check['leaks'], JSON.stringify(check));
  });

  for (const options of ['subformat=dynamic', 'subformat=fixed', 'subformat=fixed,force_size=on']) {
    it(`a VHD stream (${options}) is qemu-img convert -O vpc byte for byte, but for its footer's timestamp, checksum and unique ID`, async (tc) => {
      if (!requireQemu(tc)) return;
      const mine = at(`bytes.${options}.vhd`);
      await streamTo('odd.raw', 'vpc', options, mine);
      qemuImgOk(['convert', '-f', 'raw', '-O', 'vpc', '-o', options, at('odd.raw'), `${mine}.qemu`]);
      const a = readFileSync(mine);
      const b = readFileSync(`${mine}.qemu`);
      assert.equal(a.length, b.length);
      // Footer (and the copy at 0 of a dynamic disk): timestamp 24..28, checksum 64..68, unique ID 68..84.
      const mask = (buf: Uint8Array, base: number): void => {
        buf.fill(0, base + 24, base + 28);
        buf.fill(0, base + 64, base + 84);
      };
      for (const buf of [a, b]) {
        if (options === 'subformat=dynamic') mask(buf, 0);
        mask(buf, buf.length - 512);
      }
      assert.ok(a.equals(b), 'same layout as qemu-img');
    });
  }

  it('refuses what a stream cannot carry, clearly', async (tc) => {
    if (!requireQemu(tc)) return;
    await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'vmdk', options: 'subformat=monolithicSparse' }), (e) => e instanceof UnsupportedError && /subformat 'monolithicSparse' cannot be written to a stream/.test(e.message));
    await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'vmdk', options: 'backing_file=x.vmdk' }), UnsupportedError);
    await assert.rejects(convertToStream(at('empty.raw'), { targetFormat: 'vmdk' }), (e) => e instanceof UnsupportedError && /cannot be empty/.test(e.message));
    for (const format of ['vpc', 'vhdx']) {
      await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: format, compress: true }), (e) => e instanceof InvalidArgumentError && e.message === 'Compression not supported for this file format');
    }
    // Options are checked as create checks them, with its messages.
    const r = qemuImg(['create', '-f', 'vpc', '-o', 'subformat=bogus', at('bogus.vhd'), '1M']);
    await assert.rejects(convertToStream(at('mixed.raw'), { targetFormat: 'vpc', options: 'subformat=bogus' }), (e) => e instanceof InvalidArgumentError && r.stderr.includes(e.message));
  });
});
