/**
 * snapshot and convert -l against qemu-img: random sequences of snapshot
 * create/apply/delete (vdisk) interleaved with writes (qemu-io and vdisk) on
 * qcow2 images of several cluster sizes, refcount widths and extended L2.
 * After each sequence qemu-img lists what vdisk lists, check is clean, and
 * every snapshot (read with qemu-img convert -l, and applied by vdisk) holds
 * the content it had when taken.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { snapshot } from '../../src/jobs/snapshot.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-snapshot-');
after(() => dir.cleanup());
const cwd = dir.path;
const M = 1024 * 1024;
const SIZE = 4 * M;

/** Drops the DATE column (local time of creation: both print it the same way, but the run spans seconds). */
function stripDates(list: string): string {
  return list.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, 'DATE');
}

function rawOf(image: string, snap?: string): Buffer {
  const out = join(cwd, 'content.raw');
  qemuImgOk(['convert', '-U', '-O', 'raw', ...(snap === undefined ? [] : ['-l', snap]), image, out]);
  return readFileSync(out);
}

async function vdiskWrite(path: string, offset: number, length: number, byte: number): Promise<void> {
  const dev = await BlockDevice.open(path, { readOnly: false, format: 'qcow2' });
  try {
    await dev.write(offset, new Uint8Array(length).fill(byte));
  } finally {
    await dev.close();
  }
}

function assertClean(image: string): void {
  const r = qemuImg(['check', image]);
  assert.equal(r.status, 0, `qemu-img check ${image}:\n${r.stdout}${r.stderr}`);
}

interface Config {
  readonly label: string;
  readonly options: string;
  readonly seed: number;
}

const CONFIGS: readonly Config[] = [
  { label: '64k clusters, refcount_bits=16', options: 'cluster_size=65536', seed: 1 },
  { label: '4k clusters, refcount_bits=64', options: 'cluster_size=4096,refcount_bits=64', seed: 2 },
  { label: '512-byte clusters', options: 'cluster_size=512', seed: 3 },
  { label: '32k clusters, extended L2', options: 'cluster_size=32768,extended_l2=on', seed: 4 },
  { label: 'compat=0.10, 16k clusters', options: 'compat=0.10,cluster_size=16384', seed: 5 },
];

async function randomSequence(image: string, seed: number): Promise<void> {
  const next = rng(seed);
  const taken = new Map<string, Buffer>(); // name → content when taken
  let serial = 0;
  for (let step = 0; step < 14; step++) {
    const r = next();
    const names = [...taken.keys()];
    const off = Math.floor(next() * (SIZE / 512 - 256)) * 512;
    const len = (1 + Math.floor(next() * 255)) * 512;
    const byte = 1 + Math.floor(next() * 250);
    if (r < 0.25) qemuIo(image, [`write -P ${byte} ${off} ${len}`], 'qcow2');
    else if (r < 0.35) qemuIo(image, [`write -z ${off} ${len}`], 'qcow2');
    else if (r < 0.5) await vdiskWrite(image, off, len, byte);
    else if (r < 0.75 || names.length === 0) {
      const name = `s${serial++}`;
      await snapshot(image, { action: 'create', name });
      taken.set(name, rawOf(image));
    } else if (r < 0.88) {
      const name = names[Math.floor(next() * names.length)] as string;
      await snapshot(image, { action: 'apply', name });
      assert.ok(rawOf(image).equals(taken.get(name) as Buffer), `content after applying ${name}`);
    } else {
      const name = names[Math.floor(next() * names.length)] as string;
      await snapshot(image, { action: 'delete', name });
      taken.delete(name);
    }
    assertClean(image);
  }
  // qemu-img lists what vdisk lists.
  const q = qemuImgOk(['snapshot', '-l', image]);
  const v = vdisk(['snapshot', '-l', image], { cwd });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(stripDates(v.stdout), stripDates(q));
  // Every snapshot, read by qemu-img and applied by vdisk on a copy, holds its content.
  for (const [name, content] of taken) {
    assert.ok(rawOf(image, name).equals(content), `qemu-img convert -l ${name}`);
    const copy = join(cwd, 'apply-copy.qcow2');
    copyFileSync(image, copy);
    const a = vdisk(['snapshot', '-a', name, copy], { cwd });
    assert.equal(a.status, 0, a.stderr);
    assertClean(copy);
    assert.ok(rawOf(copy).equals(content), `vdisk snapshot -a ${name}`);
    const c = vdisk(['convert', '-O', 'raw', '-l', name, image, 'vdisk-l.raw'], { cwd });
    assert.equal(c.status, 0, c.stderr);
    assert.ok(readFileSync(join(cwd, 'vdisk-l.raw')).equals(content), `vdisk convert -l ${name}`);
  }
}

describe('snapshot: random create/apply/delete sequences against qemu-img', () => {
  for (const c of CONFIGS) {
    it(`keeps qemu-img check clean and every snapshot's content (${c.label})`, async (t) => {
      if (!requireQemu(t)) return;
      const image = join(cwd, `seq-${c.seed}.qcow2`);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', c.options, image, String(SIZE)]);
      qemuIo(image, [`write -P 7 0 ${M}`, `write -c -P 9 ${2 * M} 64k`], 'qcow2');
      await randomSequence(image, c.seed);
    });
  }
});

describe('snapshot CLI: messages and exit codes as qemu-img 7.2', () => {
  const cases: readonly (readonly string[])[] = [
    ['-a', 'nosuch'],
    ['-d', 'nosuch'],
    ['-d', '1'], // delete is by name only
    ['-f', 'qcow2', '-l'],
    ['-l', '-c', 'x'],
    ['-U', '-c', 'x'],
    [], // no action: nothing happens
  ];
  for (const args of cases) {
    it(`snapshot ${args.join(' ')}`, (t) => {
      if (!requireQemu(t)) return;
      const image = join(cwd, 'msg.qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', image, '1M']);
      qemuImgOk(['snapshot', '-c', 'one', image]);
      const q = qemuImg(['snapshot', ...args, image]);
      const v = vdisk(['snapshot', ...args, image], { cwd });
      assert.equal(v.status, q.status ?? -1);
      assert.equal(v.stderr, asVdisk(q.stderr));
      assert.equal(v.stdout, q.stdout);
    });
  }

  it('refuses other formats as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'plain.raw');
    qemuImgOk(['create', '-q', '-f', 'raw', image, '1M']);
    for (const args of [['-c', 's'], ['-a', 's'], ['-d', 's'], ['-l']]) {
      const q = qemuImg(['snapshot', ...args, image]);
      const v = vdisk(['snapshot', ...args, image], { cwd });
      assert.equal(v.status, q.status ?? -1, args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
    }
  });

  it('refuses to saturate refcount_bits=1 and leaves the image clean', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'rc1.qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'refcount_bits=1', image, '1M']);
    qemuIo(image, ['write 0 64k'], 'qcow2');
    const v = vdisk(['snapshot', '-c', 's', image], { cwd });
    assert.equal(v.status, 1);
    assert.equal(v.stderr, "vdisk: Could not create snapshot 's': -22 (Invalid argument)\n");
    assertClean(image);
  });
});

describe('convert -l: errors as qemu-img 7.2', () => {
  const cases: readonly (readonly string[])[] = [
    ['-l', 'nosuch'],
    ['-l', 'snapshot.id=1,snapshot.name=other'],
    ['-l', 'snapshot.id=1,foo=1'],
    ['-s', 'one'],
  ];
  for (const args of cases) {
    it(`convert ${args.join(' ')}`, (t) => {
      if (!requireQemu(t)) return;
      const image = join(cwd, 'cl.qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', image, '1M']);
      qemuImgOk(['snapshot', '-c', 'one', image]);
      const q = qemuImg(['convert', '-O', 'raw', ...args, image, join(cwd, 'q.raw')]);
      const v = vdisk(['convert', '-O', 'raw', ...args, image, 'v.raw'], { cwd });
      assert.equal(v.status, q.status ?? -1);
      assert.equal(v.stderr, asVdisk(q.stderr));
    });
  }

  it('refuses several sources and formats without snapshots', (t) => {
    if (!requireQemu(t)) return;
    const image = join(cwd, 'cl2.qcow2');
    const raw = join(cwd, 'cl2.raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', image, '1M']);
    qemuImgOk(['create', '-q', '-f', 'raw', raw, '1M']);
    for (const args of [['-l', 'x', image, image], ['-f', 'raw', '-l', 'x', raw]]) {
      const q = qemuImg(['convert', '-O', 'raw', ...args, join(cwd, 'q.raw')]);
      const v = vdisk(['convert', '-O', 'raw', ...args, 'v.raw'], { cwd });
      assert.equal(v.status, q.status ?? -1, args.join(' '));
      assert.equal(v.stderr, asVdisk(q.stderr), args.join(' '));
    }
  });
});
