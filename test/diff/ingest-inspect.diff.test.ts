/**
 * `vdisk inspect` judges a labelled set of
 * uploads as a careful import service would. Standard qcow2, vmdk, vdi,
 * vpc, vhdx, raw, GPT and ISO images are safe; backing files, data files,
 * external, escaping or URL extents, format confusion and policy breaches
 * are unsafe, each with its reason code. Nothing but the file given is
 * opened: the files the unsafe images name are FIFOs here, which would
 * hang any open.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, openSync, closeSync, writeSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';

import { inspect, MemoryStore, type InspectResult } from '../../src/index.js';
import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-ingest-inspect-');
after(() => dir.cleanup());
const up = join(dir.path, 'uploads');
mkdirSync(up);

const create = (args: string[]): void => void qemuImgOk(['create', '-q', ...args], { cwd: up });
/** Writes `bytes` into `file` at `offset`, keeping the rest. */
function poke(file: string, offset: number, bytes: Uint8Array | string): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** A raw disk with a protective MBR and a GPT header (what sgdisk writes first). */
function gptDisk(file: string): void {
  writeFileSync(file, new Uint8Array(1 << 20));
  const mbr = new Uint8Array(512);
  mbr[446 + 4] = 0xee; // protective partition
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  poke(file, 0, mbr);
  poke(file, 512, 'EFI PART');
}

/** A raw ISO 9660 image: its primary volume descriptor in sector 16. */
function isoImage(file: string): void {
  writeFileSync(file, new Uint8Array(1 << 20));
  poke(file, 32768, '\x01CD001\x01');
  poke(file, 34816, '\xffCD001\x01');
}

function descriptor(file: string, extent: string): void {
  writeFileSync(
    file,
    ['# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="monolithicFlat"', '', `RW 2048 FLAT "${extent}" 0`, '', 'ddb.adapterType = "ide"', ''].join('\n'),
  );
}

/** Each upload: how to make it, whether it is safe, and the reason codes when not. */
const LABELLED: Array<{ name: string; make: (f: string) => void; safe: boolean; codes?: string[]; format?: string }> = [
  { name: 'std.qcow2', make: (f) => create(['-f', 'qcow2', f, '1M']), safe: true, format: 'qcow2' },
  { name: 'v2.qcow2', make: (f) => create(['-f', 'qcow2', '-o', 'compat=0.10', f, '1M']), safe: true, format: 'qcow2' },
  { name: 'sparse.vmdk', make: (f) => create(['-f', 'vmdk', f, '1M']), safe: true, format: 'vmdk' },
  { name: 'stream.vmdk', make: (f) => create(['-f', 'vmdk', '-o', 'subformat=streamOptimized', f, '1M']), safe: true, format: 'vmdk' },
  { name: 'disk.vdi', make: (f) => create(['-f', 'vdi', f, '1M']), safe: true, format: 'vdi' },
  { name: 'disk.vhd', make: (f) => create(['-f', 'vpc', f, '1M']), safe: true, format: 'vpc' },
  { name: 'disk.vhdx', make: (f) => create(['-f', 'vhdx', f, '1M']), safe: true, format: 'vhdx' },
  { name: 'disk.raw', make: (f) => create(['-f', 'raw', f, '1M']), safe: true, format: 'raw' },
  { name: 'gpt.raw', make: gptDisk, safe: true, format: 'raw' },
  { name: 'cd.iso', make: isoImage, safe: true, format: 'raw' },
  { name: 'gz.qcow2.gz', make: (f) => {
    create(['-f', 'qcow2', `${f}.in`, '1M']);
    writeFileSync(f, gzipSync(readFileSync(`${f}.in`)));
  }, safe: true, format: 'qcow2' },
  { name: 'backed.qcow2', make: (f) => create(['-f', 'qcow2', '-u', '-b', 'fifo-backing', '-F', 'raw', f, '1M']), safe: false, codes: ['backing-file'] },
  { name: 'abs-backed.qcow2', make: (f) => create(['-f', 'qcow2', '-u', '-b', '/etc/passwd', '-F', 'raw', f, '1M']), safe: false, codes: ['backing-file'] },
  { name: 'url-backed.qcow2', make: (f) => create(['-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:1/x', '-F', 'raw', f, '1M']), safe: false, codes: ['protocol-reference'] },
  { name: 'datafile.qcow2', make: (f) => {
    create(['-f', 'qcow2', '-o', 'data_file=fifo-data', f, '1M']);
  }, safe: false, codes: ['data-file'] },
  { name: 'delta.vmdk', make: (f) => {
    create(['-f', 'vmdk', 'vbase.vmdk', '1M']);
    create(['-f', 'vmdk', '-b', 'vbase.vmdk', '-F', 'vmdk', f]);
  }, safe: false, codes: ['backing-file'] },
  { name: 'flat.vmdk', make: (f) => descriptor(f, 'fifo-extent'), safe: false, codes: ['external-extent'] },
  { name: 'url.vmdk', make: (f) => descriptor(f, 'nbd://127.0.0.1:1/x'), safe: false, codes: ['protocol-reference'] },
  { name: 'escape.vmdk', make: (f) => descriptor(f, '../outside.raw'), safe: false, codes: ['external-extent'] },
  { name: 'confused.qcow2', make: (f) => {
    create(['-f', 'qcow2', f, '1M']);
    poke(f, 32768, '\x01CD001\x01'); // unused space of the header cluster: qemu still opens it as qcow2
  }, safe: false, codes: ['format-confusion'] },
  { name: 'gpt-in.qcow2', make: (f) => {
    create(['-f', 'qcow2', f, '1M']);
    poke(f, 512, 'EFI PART');
  }, safe: false, codes: ['format-confusion'] },
  { name: 'compat-bit.qcow2', make: (f) => {
    create(['-f', 'qcow2', f, '1M']);
    poke(f, 87, new Uint8Array([0x02])); // compatible_features bit 1: unknown, ignored by qemu
  }, safe: false, codes: ['unknown-features'] },
  { name: 'incompat-bit.qcow2', make: (f) => {
    create(['-f', 'qcow2', f, '1M']);
    poke(f, 79, new Uint8Array([0x80])); // incompatible_features bit 7: unknown, the open fails
  }, safe: false, codes: ['open-failed'] },
];

function run(args: string[]): { status: number; result: InspectResult } {
  const r = vdisk(['inspect', '--output=json', ...args], { cwd: up, timeoutMs: 20_000 });
  assert.ok(r.status === 0 || r.status === 2, `exit ${r.status}: ${r.stderr}`);
  return { status: r.status, result: JSON.parse(r.stdout) as InspectResult };
}

describe('ingest: vdisk inspect judges a labelled set of uploads', () => {
  before(() => {
    if (!hasQemu) return;
    for (const l of LABELLED) l.make(join(up, l.name));
    // The names the unsafe uploads reference (data_file= created one): opening any of them would block.
    for (const fifo of ['fifo-backing', 'fifo-data', 'fifo-extent', 'vbase.vmdk']) {
      rmSync(join(up, fifo), { force: true });
      execFileSync('mkfifo', [join(up, fifo)]);
    }
  });

  for (const l of LABELLED) {
    it(`${l.name}: ${l.safe ? 'safe' : `unsafe (${l.codes?.join(', ')})`}`, (t) => {
      if (!requireQemu(t)) return;
      const { status, result } = run([l.name]);
      assert.equal(result.safe, l.safe, JSON.stringify(result.reasons));
      assert.equal(status, l.safe ? 0 : 2);
      if (l.format) assert.equal(result.format, l.format);
      if (l.safe) assert.deepEqual(result.reasons, []);
      for (const code of l.codes ?? []) assert.ok(result.reasons.some((r) => r.code === code), `${code} in ${JSON.stringify(result.reasons)}`);
      for (const r of result.reasons) assert.doesNotMatch(r.message, /undefined/);
    });
  }

  it('reports where each reference would resolve, and whether it escapes the upload directory', (t) => {
    if (!requireQemu(t)) return;
    const { result } = run(['escape.vmdk']);
    assert.deepEqual(result.references.map((r) => [r.role, r.name, r.inside]), [['extent', '../outside.raw', false]]);
    const abs = run(['abs-backed.qcow2']).result;
    assert.equal(abs.references[0]?.resolved, '/etc/passwd');
    assert.equal(abs.references[0]?.inside, false);
  });

  it('policy: --allowed-formats and --max-virtual-size make a safe image unsafe; a human verdict too', (t) => {
    if (!requireQemu(t)) return;
    assert.deepEqual(run(['--allowed-formats=raw,vmdk', 'std.qcow2']).result.reasons.map((r) => r.code), ['format-not-allowed']);
    assert.deepEqual(run(['--max-virtual-size=512K', 'std.qcow2']).result.reasons.map((r) => r.code), ['virtual-size']);
    assert.deepEqual(run(['--max-inflated-size=64K', 'gz.qcow2.gz']).result.reasons.map((r) => r.code), ['inflated-size']);
    const human = vdisk(['inspect', 'backed.qcow2'], { cwd: up });
    assert.equal(human.status, 2);
    assert.match(human.stdout, /^verdict: unsafe$/m);
    assert.match(human.stdout, /backing-file: /);
  });

  it('reports the sizes: virtual, file, data and metadata', (t) => {
    if (!requireQemu(t)) return;
    const q = run(['std.qcow2']).result;
    assert.deepEqual([q.virtualSize, q.dataSize, q.metadataSize], [1 << 20, 0, q.fileSize]);
    const g = run(['gz.qcow2.gz']).result;
    assert.equal(g.wrapper?.type, 'gzip');
    assert.equal(g.imageSize, g.wrapper?.inflatedSize);
    assert.ok(g.fileSize < g.imageSize);
    const r = run(['disk.raw']).result;
    assert.deepEqual([r.dataSize, r.metadataSize], [1 << 20, 0]);
  });

  it('a missing file is an error (exit 1), not a verdict', (t) => {
    if (!requireQemu(t)) return;
    const r = vdisk(['inspect', 'nope.qcow2'], { cwd: up });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^vdisk: Could not open 'nope\.qcow2': .*No such file or directory/);
  });

  it('the SDK inspects a caller\'s store and leaves it open', async (t) => {
    if (!requireQemu(t)) return;
    const store = new MemoryStore('upload', readFileSync(join(up, 'std.qcow2')), { readOnly: true });
    const v = await inspect(store, { policy: { allowedFormats: ['qcow2'] } });
    assert.equal(v.safe, true, JSON.stringify(v.reasons));
    assert.equal(v.format, 'qcow2');
    assert.equal(await store.read(0, new Uint8Array(4)), 4);
  });
});
