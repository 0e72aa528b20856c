/**
 * Images read from a forward-only stream (convertFromStream, `vdisk
 * convert -f FMT - OUT`): qemu-made raw, fixed and dynamic VHD and
 * streamOptimized VMDK give the bytes `qemu-img convert -O raw` gives,
 * through stdin and through the API from a Readable; gzip, zstd, tar and
 * zip wrappers are peeled off as the bytes flow; a truncated stream, a
 * layout that cannot be read forward and an abort fail with typed errors
 * and leave no target behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { zipSync } from 'fflate';

import { VDISK_BIN } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, hasQemu, hasQemuIo, tmpDir } from '../helpers/qemu.js';
import { convertFromStream } from '../../src/stream.js';
import { encodeUnit, loadZstd } from '../../src/core/codec-kernels.js';
import { VdiskError } from '../../src/core/errors.js';

const dir = tmpDir('vdisk-stream-in-');
after(() => dir.cleanup());
const at = (name: string): string => join(dir.path, name);
const SIZE = 16 * 1024 * 1024;

/** The images every test reads: [label, file, -f format]. */
const SOURCES: readonly (readonly [string, string, string])[] = [
  ['raw', 'src.raw', 'raw'],
  ['fixed VHD', 'fixed.vhd', 'vpc'],
  ['dynamic VHD', 'dynamic.vhd', 'vpc'],
  ['streamOptimized VMDK', 'stream.vmdk', 'vmdk'],
];

before(() => {
  if (!hasQemu || !hasQemuIo) return;
  qemuImgOk(['create', '-f', 'raw', at('src.raw'), String(SIZE)]);
  // Data at the start, in the middle across a 2 MiB VHD block edge, unaligned runs, and at the very end.
  qemuIo(at('src.raw'), ['write -P 0x11 0 1M', 'write -P 0x22 3M 100k', 'write -P 0x33 4190k 12k', 'write -P 0x44 9M 3584', `write -P 0x55 ${SIZE - 64 * 1024} 64k`], 'raw');
  qemuImgOk(['convert', '-O', 'vpc', '-o', 'subformat=fixed', at('src.raw'), at('fixed.vhd')]);
  qemuImgOk(['convert', '-O', 'vpc', '-o', 'subformat=dynamic', at('src.raw'), at('dynamic.vhd')]);
  qemuImgOk(['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', at('src.raw'), at('stream.vmdk')]);
  for (const [, file, fmt] of SOURCES) qemuImgOk(['convert', '-f', fmt, '-O', 'raw', at(file), at(`${file}.ref`)]);
});

/** Runs the CLI with `stdinFile` as its standard input. */
function vdiskStdin(args: readonly string[], stdinFile: string): { status: number; stderr: string } {
  const fd = openSync(stdinFile, 'r');
  try {
    const r = spawnSync(process.execPath, [VDISK_BIN, ...args], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    return { status: r.status ?? -1, stderr: r.stderr };
  } finally {
    closeSync(fd);
  }
}

/** Files left in the test directory that a failed job may have made (targets, temporary names). */
function leftovers(prefix: string): string[] {
  return readdirSync(dir.path).filter((f) => f.startsWith(prefix) || f.startsWith(`.${prefix}`));
}

function sameBytes(a: string, b: string): void {
  assert.ok(readFileSync(a).equals(readFileSync(b)), `${a} differs from ${b}`);
}

describe('stream-in: qemu-made images through stdin (vdisk convert -f FMT - OUT)', () => {
  for (const [label, file, fmt] of SOURCES) {
    it(`${label}: out.raw is what qemu-img convert -O raw gives`, (t) => {
      if (!requireQemu(t)) return;
      const out = at(`cli-${file}.raw`);
      const r = vdiskStdin(['convert', '-f', fmt, '-O', 'raw', '-', out], at(file));
      assert.equal(r.status, 0, r.stderr);
      sameBytes(out, at(`${file}.ref`));
    });
    it(`${label}: into qcow2, check clean and compare equal`, (t) => {
      if (!requireQemu(t)) return;
      const out = at(`cli-${file}.qcow2`);
      const r = vdiskStdin(['convert', '-f', fmt, '-O', 'qcow2', '-', out], at(file));
      assert.equal(r.status, 0, r.stderr);
      const check = qemuImg(['check', '--output=json', out]);
      assert.equal(check.status, 0, check.stdout + check.stderr);
      const report = JSON.parse(check.stdout) as { leaks?: number; 'check-errors': number; corruptions?: number };
      assert.equal(report['check-errors'], 0);
      assert.equal(report.leaks ?? 0, 0);
      assert.equal(report.corruptions ?? 0, 0);
      const cmp = qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', at(`${file}.ref`), out]);
      assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
      assert.equal(qemuImgInfoSize(out), statSize(at(`${file}.ref`)));
    });
  }
  it('the format is probed when -f is omitted (dynamic VHD, VMDK)', (t) => {
    if (!requireQemu(t)) return;
    for (const file of ['dynamic.vhd', 'stream.vmdk']) {
      const out = at(`probe-${file}.raw`);
      const r = vdiskStdin(['convert', '-O', 'raw', '-', out], at(file));
      assert.equal(r.status, 0, r.stderr);
      sameBytes(out, at(`${file}.ref`));
    }
  });
  it('refuses - among several sources', (t) => {
    if (!requireQemu(t)) return;
    const r = vdiskStdin(['convert', at('src.raw'), '-', at('two.raw')], at('src.raw'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^vdisk: '-' \(standard input\) can only be the single source of convert\n$/);
    assert.deepEqual(leftovers('two.raw'), []);
  });
});

function qemuImgInfoSize(file: string): number {
  return (JSON.parse(qemuImgOk(['info', '--output=json', file])) as { 'virtual-size': number })['virtual-size'];
}

function statSize(file: string): number {
  return readFileSync(file).length;
}

describe('stream-in: sizes known only at the end (raw, fixed VHD)', () => {
  it('a raw stream of an odd length gives the virtual size qemu-img gives the same file (whole sectors)', (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(at('odd.raw'), readFileSync(at('src.raw')).subarray(0, 5_000_000));
    for (const fmt of ['raw', 'qcow2']) {
      const ours = at(`odd-ours.${fmt}`);
      const theirs = at(`odd-theirs.${fmt}`);
      const r = vdiskStdin(['convert', '-O', fmt, '-', ours], at('odd.raw'));
      assert.equal(r.status, 0, r.stderr);
      qemuImgOk(['convert', '-f', 'raw', '-O', fmt, at('odd.raw'), theirs]);
      assert.equal(qemuImgInfoSize(ours), qemuImgInfoSize(theirs), fmt);
      assert.equal(qemuImg(['compare', '-F', fmt, '-f', fmt, theirs, ours]).status, 0, fmt);
    }
    assert.equal(qemuImg(['check', at('odd-ours.qcow2')]).status, 0);
  });
  it('a target format that cannot grow needs -o size; without it the job refuses before writing', (t) => {
    if (!requireQemu(t)) return;
    const refused = vdiskStdin(['convert', '-O', 'vpc', '-', at('nogrow.vhd')], at('src.raw'));
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /^vdisk: The size of '-' is known only at its end and vpc images cannot grow: give the target's size \(option size\)\n$/);
    assert.deepEqual(leftovers('nogrow.vhd'), []);
    const ok = vdiskStdin(['convert', '-f', 'vpc', '-O', 'vmdk', '-o', `size=${SIZE}`, '-', at('sized.vmdk')], at('fixed.vhd'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'vmdk', at('src.raw'), at('sized.vmdk')]).status, 0);
  });
});

describe('stream-in: the API from a Readable', () => {
  for (const [label, file, fmt] of SOURCES) {
    it(`${label}: convertFromStream(createReadStream(...)) gives the source bytes`, async (t) => {
      if (!requireQemu(t)) return;
      const out = at(`api-${file}.raw`);
      const r = await convertFromStream(createReadStream(at(file), { highWaterMark: 64 * 1024 }), out, { sourceFormat: fmt });
      assert.equal(r.sourceFormat, fmt);
      assert.equal(r.size, statSize(at(`${file}.ref`)));
      assert.equal(r.bytesRead, statSize(at(file)));
      sameBytes(out, at(`${file}.ref`));
    });
  }
  it('a web ReadableStream works too (any async iterable of chunks)', async (t) => {
    if (!requireQemu(t)) return;
    const out = at('web.raw');
    const web = Readable.toWeb(createReadStream(at('stream.vmdk'))) as unknown as AsyncIterable<Uint8Array>;
    await convertFromStream(web, out, {});
    sameBytes(out, at('stream.vmdk.ref'));
  });
});

describe('stream-in: wrapped streams are unwrapped as they flow', () => {
  it('gzip, zstd, zip, tar (OVA-like) and tar.gz give the disk inside', async (t) => {
    if (!requireQemu(t)) return;
    const vmdk = readFileSync(at('stream.vmdk'));
    await loadZstd();
    writeFileSync(at('w.vmdk.gz'), gzipSync(vmdk));
    writeFileSync(at('w.vmdk.zst'), encodeUnit('zstd', vmdk));
    writeFileSync(at('w.zip'), zipSync({ 'appliance.ovf': new TextEncoder().encode('<Envelope/>'), 'disk1.vmdk': vmdk }));
    writeFileSync(at('appliance.ovf'), '<Envelope/>');
    execFileSync('tar', ['-C', dir.path, '--format=ustar', '-cf', at('w.ova'), 'appliance.ovf', 'stream.vmdk']);
    writeFileSync(at('w.ova.gz'), gzipSync(readFileSync(at('w.ova'))));
    const expect: Record<string, string[]> = { 'w.vmdk.gz': ['gzip'], 'w.vmdk.zst': ['zstd'], 'w.zip': ['zip'], 'w.ova': ['tar'], 'w.ova.gz': ['gzip', 'tar'] };
    for (const [file, wrappers] of Object.entries(expect)) {
      const out = at(`unwrapped-${file}.raw`);
      const r = await convertFromStream(createReadStream(at(file)), out, {});
      assert.deepEqual(r.wrappers, wrappers, file);
      assert.equal(r.sourceFormat, 'vmdk', file);
      sameBytes(out, at('stream.vmdk.ref'));
    }
    // Through stdin as well, into qcow2.
    const q = at('unwrapped-cli.qcow2');
    const r = vdiskStdin(['convert', '-O', 'qcow2', '-', q], at('w.ova.gz'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', at('stream.vmdk.ref'), q]).status, 0);
  });
  it('the inflated size cap of the ingest policy applies', async (t) => {
    if (!requireQemu(t)) return;
    writeFileSync(at('gz-cap.raw.gz'), gzipSync(readFileSync(at('src.raw'))));
    const out = at('cap.raw');
    await assert.rejects(convertFromStream(createReadStream(at('gz-cap.raw.gz')), out, { policy: { maxInflatedSize: 1024 * 1024 } }), (e: unknown) => e instanceof VdiskError && e.code === 'EPOLICY' && e.reason === 'inflated-size-limit');
    assert.deepEqual(leftovers('cap.raw'), []);
  });
  it('a zip entry whose CRC-32 does not match its data fails, and no target is left', async (t) => {
    if (!requireQemu(t)) return;
    const zip = zipSync({ 'disk1.vmdk': readFileSync(at('stream.vmdk')) });
    const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    view.setUint32(14, view.getUint32(14, true) ^ 1, true);
    const out = at('bad-crc.raw');
    await assert.rejects(convertFromStream(Readable.from([zip]), out, {}), (e: unknown) => e instanceof VdiskError && e.code === 'ECORRUPT' && /CRC mismatch in zip entry 'disk1.vmdk'/.test(e.message));
    assert.deepEqual(leftovers('bad-crc.raw'), []);
  });
  it('bzip2 (one stream or several, as pbzip2 writes) gives the disk inside; a damaged one fails and leaves nothing', async (t) => {
    if (!requireQemu(t)) return;
    const vmdk = readFileSync(at('stream.vmdk'));
    const half = Math.floor(vmdk.length / 2);
    const bz = (data: Uint8Array): Buffer => execFileSync('bzip2', ['-c', '-9'], { input: data, maxBuffer: 1 << 28 });
    writeFileSync(at('w.vmdk.bz2'), bz(vmdk));
    writeFileSync(at('w2.vmdk.bz2'), Buffer.concat([bz(vmdk.subarray(0, half)), bz(vmdk.subarray(half))]));
    for (const file of ['w.vmdk.bz2', 'w2.vmdk.bz2']) {
      const out = at(`unwrapped-${file}.raw`);
      const r = await convertFromStream(createReadStream(at(file)), out, {});
      assert.deepEqual(r.wrappers, ['bzip2'], file);
      sameBytes(out, at('stream.vmdk.ref'));
    }
    const cli = vdiskStdin(['convert', '-O', 'qcow2', '-', at('bz2-cli.qcow2')], at('w.vmdk.bz2'));
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(qemuImg(['compare', '-f', 'raw', '-F', 'qcow2', at('stream.vmdk.ref'), at('bz2-cli.qcow2')]).status, 0);
    const damaged = new Uint8Array(readFileSync(at('w.vmdk.bz2')));
    damaged[12] = (damaged[12] as number) ^ 0x40;
    const out = at('bad.raw');
    await assert.rejects(convertFromStream(Readable.from([damaged]), out, {}), (e: unknown) => e instanceof VdiskError && e.code === 'ECORRUPT' && /\(bzip2\): bzip2: block CRC mismatch/.test(e.message));
    assert.deepEqual(leftovers('bad.raw'), []);
  });
  it('xz is refused with a clear message', async () => {
    const xz = new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]);
    await assert.rejects(convertFromStream(Readable.from([xz]), at('xz.raw'), {}), (e: unknown) => e instanceof VdiskError && e.code === 'EUNSUPPORTED' && /xz-compressed/.test(e.message));
    assert.deepEqual(leftovers('xz.raw'), []);
  });
});

describe('stream-in: failures leave nothing behind', () => {
  it('a truncated stream fails with exit 1, naming the offset, and no target is left', (t) => {
    if (!requireQemu(t)) return;
    for (const [file, fmt] of [['dynamic.vhd', 'vpc'], ['stream.vmdk', 'vmdk']] as const) {
      const whole = readFileSync(at(file));
      const cut = Math.floor(whole.length / 2) + 7;
      writeFileSync(at(`cut-${file}`), whole.subarray(0, cut));
      const out = at(`cut-${file}.raw`);
      const r = vdiskStdin(['convert', '-f', fmt, '-', out], at(`cut-${file}`));
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^vdisk: '-': the stream ended at offset ${cut}, \\d+ more bytes were expected\\n$`));
      assert.deepEqual(leftovers(`cut-${file}.raw`), []);
    }
  });
  it('a truncated stream through the API: CorruptImageError, reason stream-ended, offset', async (t) => {
    if (!requireQemu(t)) return;
    const whole = readFileSync(at('stream.vmdk'));
    const out = at('cut-api.raw');
    await assert.rejects(convertFromStream(Readable.from([whole.subarray(0, 70000)]), out, { sourceFormat: 'vmdk' }), (e: unknown) => e instanceof VdiskError && e.code === 'ECORRUPT' && e.reason === 'stream-ended' && e.offset === 70000);
    assert.deepEqual(leftovers('cut-api.raw'), []);
  });
  it('a VHD block placed before its BAT cannot be read forward: stream-layout, naming the offset', async (t) => {
    if (!requireQemu(t)) return;
    const vhd = new Uint8Array(readFileSync(at('dynamic.vhd')));
    const v = new DataView(vhd.buffer);
    const bat = Number(v.getBigUint64(512 + 16));
    // BAT entry 0 now points at sector 1, which the stream has passed when the BAT is read.
    v.setUint32(bat, 1);
    const out = at('layout.raw');
    await assert.rejects(convertFromStream(Readable.from([vhd]), out, { sourceFormat: 'vpc' }), (e: unknown) => e instanceof VdiskError && e.reason === 'stream-layout' && e.offset === 512 && /cannot be read forward/.test(e.message));
    assert.deepEqual(leftovers('layout.raw'), []);
  });
  it('an abort mid-stream rejects with EABORTED and removes the temporary target', async (t) => {
    if (!requireQemu(t)) return;
    const ac = new AbortController();
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    let sent = 0;
    // Four chunks, then a stall: the abort must not wait for more data.
    const stalled = new Readable({
      read() {
        if (sent < 4) {
          sent++;
          this.push(chunk);
          if (sent === 4) setTimeout(() => ac.abort(), 50);
        }
      },
    });
    const out = at('aborted.raw');
    await assert.rejects(convertFromStream(stalled, out, { signal: ac.signal }), (e: unknown) => e instanceof VdiskError && e.code === 'EABORTED');
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers('aborted.raw'), []);
    assert.ok(stalled.destroyed, 'the source stream is destroyed');
  });
});

describe('stream-in: memory stays bounded', () => {
  it('a 256 MiB raw stream peaks well under 200 MiB of RSS', (t) => {
    if (!requireQemu(t)) return;
    const script = `
      import { Readable } from 'node:stream';
      import { readFileSync } from 'node:fs';
      const { convertFromStream } = await import(${JSON.stringify(new URL('../../src/stream.js', import.meta.url).href)});
      const total = 256 * 1024 * 1024, chunk = 64 * 1024;
      let sent = 0;
      const src = new Readable({ read() {
        if (sent >= total) return void this.push(null);
        const b = Buffer.alloc(chunk); b.fill(sent / chunk & 0xff, 0, 512); sent += chunk; this.push(b);
      } });
      await convertFromStream(src, process.argv[1], { targetFormat: 'qcow2' });
      const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      console.log(hwm ? hwm[1] : 'unknown');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, at('rss.qcow2')], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const kib = Number(r.stdout.trim());
    t.diagnostic(`peak RSS streaming 256 MiB raw into qcow2: ${Math.round(kib / 1024)} MiB`);
    if (Number.isFinite(kib)) assert.ok(kib < 200 * 1024, `peak RSS ${kib} KiB`);
    assert.equal(qemuImg(['check', at('rss.qcow2')]).status, 0);
  });
});
