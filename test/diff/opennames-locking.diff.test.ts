/**
 * Every file of a source is locked (vmdk extents, qcow2
 * data files), as qemu locks each file of an image, so a conversion never
 * writes into a file it reads — also through the target's own extents —
 * and refuses with qemu-img's message and exit status; and the locks
 * interoperate with qemu's: what a file is to its image (metadata, data,
 * a whole raw disk) decides what the lock lets others do, as in qemu.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, hasQemuIo, qemuImg, qemuImgOk, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);

/** Both tools refuse `args` the same way, and nothing the sources consist of changed. */
function sameRefusal(args: readonly string[], sources: readonly string[], env?: NodeJS.ProcessEnv, between?: () => void): void {
  const before = sources.map((s) => readFileSync(at(s)));
  const q = qemuImg(args, { cwd });
  between?.();
  const r = vdisk(args, env ? { cwd, env } : { cwd });
  assert.equal(q.status, 1, `qemu-img ${args.join(' ')}: ${q.stderr}`);
  assert.equal(r.status, 1, args.join(' '));
  assert.equal(r.stderr, asVdisk(q.stderr), args.join(' '));
  sources.forEach((s, i) => assert.ok(readFileSync(at(s)).equals(before[i] as Buffer), `${s} unchanged`));
}

function fresh(): void {
  qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'flat.vmdk', '1M'], { cwd });
  writeFileSync(at('flat-flat.vmdk'), Buffer.alloc(1024 * 1024, 0x5a));
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'data_file=dd.raw', 'dq.qcow2', '1M'], { cwd });
  writeFileSync(at('t-flat.vmdk'), Buffer.alloc(1024 * 1024, 0x33));
}

describe('convert never writes into a file a source consists of', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  for (const mode of ['with OFD locks', 'without the native module'] as const) {
    const env = mode === 'with OFD locks' ? undefined : { VDISK_NO_NATIVE: '1' };
    it(`refuses the extent of a flat vmdk source, as qemu-img does (${mode})`, () => {
      fresh();
      sameRefusal(['convert', '-O', 'raw', 'flat.vmdk', 'flat-flat.vmdk'], ['flat.vmdk', 'flat-flat.vmdk'], env);
      sameRefusal(['convert', '-O', 'qcow2', 'flat.vmdk', 'flat-flat.vmdk'], ['flat.vmdk', 'flat-flat.vmdk'], env);
      sameRefusal(['convert', '-n', '-O', 'raw', 'flat.vmdk', 'flat-flat.vmdk'], ['flat.vmdk', 'flat-flat.vmdk'], env);
    });

    it(`refuses the data file of a qcow2 source (${mode})`, () => {
      fresh();
      sameRefusal(['convert', '-O', 'raw', 'dq.qcow2', 'dd.raw'], ['dq.qcow2', 'dd.raw'], env);
    });

    it(`refuses a target whose own extent or data file is a source (${mode})`, () => {
      fresh();
      // qemu-img leaves an empty t.vmdk behind; without locks vdisk would refuse that existing file before its extent.
      const dropTarget = (): void => rmSync(at('t.vmdk'), { force: true });
      dropTarget();
      sameRefusal(['convert', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', 't-flat.vmdk', 't.vmdk'], ['t-flat.vmdk'], env, dropTarget);
      writeFileSync(at('d.raw'), Buffer.alloc(65536, 0x11));
      sameRefusal(['convert', '-O', 'qcow2', '-o', 'data_file=d.raw', 'd.raw', 'q.qcow2'], ['d.raw'], env);
      // an existing target (-n) whose extent is the source
      qemuImgOk(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'u.vmdk', '1M'], { cwd });
      writeFileSync(at('t.vmdk'), readFileSync(at('u.vmdk'), 'latin1').replace('u-flat.vmdk', 't-flat.vmdk'), 'latin1');
      if (!env) {
        sameRefusal(['convert', '-n', '-O', 'vmdk', 't-flat.vmdk', 't.vmdk'], ['t-flat.vmdk']);
      } else {
        // Without locks an existing image is not opened for writing at all (before its extents are).
        const before = readFileSync(at('t-flat.vmdk'));
        const r = vdisk(['convert', '-n', '-O', 'vmdk', 't-flat.vmdk', 't.vmdk'], { cwd, env });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /^vdisk: Could not open 't\.vmdk': Failed to lock 't\.vmdk': image locking is unavailable/);
        assert.ok(readFileSync(at('t-flat.vmdk')).equals(before));
      }
    });
  }

  it('refuses a target named by --target-image-opts that is a source', () => {
    fresh();
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.qcow2', '1M'], { cwd });
    sameRefusal(['convert', '-n', '--target-image-opts', 'x.qcow2', 'driver=raw,file.filename=x.qcow2'], ['x.qcow2']);
  });

  it('converts a flat vmdk into a fresh file as before', () => {
    fresh();
    assert.equal(vdisk(['convert', '-O', 'raw', 'flat.vmdk', 'copy.raw'], { cwd }).status, 0);
    assert.ok(readFileSync(at('copy.raw')).equals(readFileSync(at('flat-flat.vmdk'))));
  });
});

/** Runs qemu-io holding `file` open for writing until stopped. */
async function holdForWriting(file: string, format: string): Promise<ChildProcess> {
  const holder = spawn('qemu-io', ['-f', format, '-c', 'sleep 20000', file], { cwd, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 700));
  return holder;
}

describe('image locks follow what each file is to its image', { skip: hasQemu && hasQemuIo && native ? false : 'needs qemu-img, qemu-io and the native module' }, () => {
  it('an extent or data file written by qemu-io: reading commands proceed, convert refuses — as qemu-img', async () => {
    fresh();
    for (const [held, image] of [['flat-flat.vmdk', 'flat.vmdk'], ['dd.raw', 'dq.qcow2']] as const) {
      const holder = await holdForWriting(held, 'raw');
      try {
        for (const args of [['info', image], ['map', image], ['check', image], ['compare', image, image]]) {
          const q = qemuImg(args, { cwd });
          const r = vdisk(args, { cwd });
          assert.equal(r.status, q.status, `${args.join(' ')}: ${r.stderr}`);
        }
        const args = ['convert', '-O', 'raw', image, 'out.raw'];
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(q.status, 1);
        assert.equal(r.status, 1);
        assert.equal(r.stderr, asVdisk(q.stderr));
        assert.equal(vdisk(['convert', '-U', '-O', 'raw', image, 'out.raw'], { cwd }).status, 0);
      } finally {
        holder.kill();
      }
    }
  });

  it('a raw image written by qemu-io: qemu-img shares it with readers and writers except convert, and so does vdisk', async () => {
    writeFileSync(at('held.raw'), Buffer.alloc(1024 * 1024));
    const holder = await holdForWriting('held.raw', 'raw');
    try {
      const cases = [['info', 'held.raw'], ['map', '-f', 'raw', 'held.raw'], ['convert', '-f', 'raw', '-O', 'raw', 'held.raw', 'c.raw'], ['resize', '-f', 'raw', 'held.raw', '2M']];
      for (const args of cases) {
        const q = qemuImg(args, { cwd });
        const r = vdisk(args, { cwd });
        assert.equal(r.status, q.status, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr, asVdisk(q.stderr), args.join(' '));
      }
    } finally {
      holder.kill();
    }
  });
});
