/**
 * Cache modes (-t / -T) end to end, checked by qemu-img: every mode's
 * convert output compares equal to its source (and checks clean), direct
 * modes really open with O_DIRECT, file systems that refuse O_DIRECT fail
 * as qemu-img fails, and bad mode names give qemu-img's messages.
 */
import assert from 'node:assert/strict';
import { constants, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { convert } from '../../src/jobs/convert.js';
import { FdHandle } from '../../src/io/fs-calls.js';
import { native } from '../../src/io/native.js';
import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-cache-diff-');
after(() => dir.cleanup());
const cwd = dir.path;

function ok(args: string[]): void {
  const r = vdisk(args, { cwd });
  assert.equal(r.status, 0, `vdisk ${args.join(' ')}: ${r.stderr}`);
}

function sameContent(a: string, b: string, extra: string[] = []): void {
  const r = qemuImg(['compare', ...extra, a, b], { cwd });
  assert.equal(r.status, 0, `compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

function checkClean(file: string): void {
  const r = qemuImg(['check', file], { cwd });
  assert.equal(r.status, 0, `check ${file}: ${r.stdout}${r.stderr}`);
}

/** The same command through qemu-img and vdisk: same exit status and stderr (qemu-img: → vdisk:). */
function sameFailure(args: string[]): void {
  const q = qemuImg(args, { cwd });
  const v = vdisk(args, { cwd });
  assert.equal(v.status, q.status, `vdisk ${args.join(' ')}: ${v.stderr} / qemu-img: ${q.stderr}`);
  assert.equal(v.stderr, asVdisk(q.stderr));
}

/** Open-descriptor flags of this process by file name (from /proc/self/fdinfo). */
function flagsByName(prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (!link.startsWith(prefix)) continue;
      const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m?.[1]) out.set(link, parseInt(m[1], 8));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const MODES = ['none', 'directsync', 'writethrough', 'unsafe', 'writeback', 'off'] as const;
const DIRECT = new Set(['none', 'directsync', 'off']);

describe('cache modes', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'base.qcow2', '12M'], { cwd });
    qemuIo(join(cwd, 'base.qcow2'), ['write -P 0x11 0 3M', 'write -P 0x22 7M 64k', 'write -z 9M 1M'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd });
    qemuIo(join(cwd, 'top.qcow2'), ['write -P 0x33 1M 100k', 'write -P 0x44 5M 3k', 'discard 7M 64k', 'write -P 0x55 11M 4k'], 'qcow2');
    // a raw source whose size is not a multiple of 512 or 4096, with random bytes
    const odd = new Uint8Array(1024 * 1024 + 333);
    for (let i = 0; i < odd.length; i += 4099) odd.fill((i * 7) & 255, i, i + 1500);
    writeFileSync(join(cwd, 'odd.raw'), odd);
  });

  for (const mode of MODES) {
    for (const fmt of ['raw', 'qcow2', 'vmdk']) {
      it(`convert -t ${mode} -T ${mode} -O ${fmt} from a qcow2 chain compares equal`, (t) => {
        if (!requireQemu(t)) return;
        if (DIRECT.has(mode) && !native) return t.skip('native module not built');
        const out = `chain-${mode}.${fmt}`;
        ok(['convert', '-t', mode, '-T', mode, '-O', fmt, 'top.qcow2', out]);
        sameContent('top.qcow2', out);
        if (fmt !== 'raw') checkClean(out);
      });
    }
  }

  it('convert -t none of an unaligned raw source gives the bytes and size qemu-img gives', (t) => {
    if (!requireQemu(t)) return;
    if (!native) return t.skip('native module not built');
    qemuImgOk(['convert', '-O', 'raw', 'odd.raw', 'odd-qemu.raw'], { cwd });
    for (const mode of ['none', 'directsync']) {
      ok(['convert', '-t', mode, '-T', mode, '-O', 'raw', 'odd.raw', `odd-${mode}.raw`]);
      assert.equal(statSync(join(cwd, `odd-${mode}.raw`)).size, statSync(join(cwd, 'odd-qemu.raw')).size);
      assert.deepEqual(readFileSync(join(cwd, `odd-${mode}.raw`)), readFileSync(join(cwd, 'odd-qemu.raw')));
      ok(['convert', '-t', mode, '-O', 'qcow2', '-o', 'cluster_size=4096', 'odd.raw', `odd-${mode}.qcow2`]);
      sameContent('odd.raw', `odd-${mode}.qcow2`);
      checkClean(`odd-${mode}.qcow2`);
    }
  });

  it('convert -n -t none onto an existing qcow2 target, and compare -T none', (t) => {
    if (!requireQemu(t)) return;
    if (!native) return t.skip('native module not built');
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'existing.qcow2', '12M'], { cwd });
    ok(['convert', '-n', '-t', 'none', '-T', 'none', '-O', 'qcow2', 'top.qcow2', 'existing.qcow2']);
    sameContent('top.qcow2', 'existing.qcow2');
    checkClean('existing.qcow2');
    const r = vdisk(['compare', '-T', 'none', 'top.qcow2', 'existing.qcow2'], { cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Images are identical.\n');
  });

  it('direct modes open sources and target with O_DIRECT (fdinfo), others without', async (t) => {
    if (!requireQemu(t)) return;
    if (!native || !existsSync('/proc/self/fdinfo')) return t.skip('needs the native module and /proc');
    for (const [tc, sc] of [['none', 'directsync'], ['writethrough', 'none'], ['unsafe', 'writeback']] as const) {
      let seen: Map<string, number> | undefined;
      const job = convert(join(cwd, 'top.qcow2'), join(cwd, `fd-${tc}.qcow2`), { targetFormat: 'qcow2', targetCache: tc, sourceCache: sc });
      job.on('progress', () => {
        seen ??= flagsByName(cwd + '/');
      });
      await job;
      assert.ok(seen, 'progress was reported while the files were open');
      const flag = (name: string): number => {
        // The temporary target's name ends in a random suffix of its own (one per job).
        const hit = [...seen!].find(([link]) => link.endsWith(name) || link.includes(`${name}-`));
        assert.ok(hit, `${name} open during the copy: ${[...seen!.keys()].join(', ')}`);
        return hit[1];
      };
      const target = flag(`.fd-${tc}.qcow2.vdisk-${process.pid}`);
      assert.equal((target & constants.O_DIRECT) !== 0, DIRECT.has(tc), `target O_DIRECT with -t ${tc}`);
      assert.equal((target & constants.O_DSYNC) !== 0, tc === 'writethrough', `target O_DSYNC with -t ${tc}`);
      for (const src of ['/top.qcow2', '/base.qcow2']) {
        assert.equal((flag(src) & constants.O_DIRECT) !== 0, DIRECT.has(sc), `${src} O_DIRECT with -T ${sc}`);
      }
      sameContent('top.qcow2', `fd-${tc}.qcow2`);
    }
  });

  it('a file system that refuses O_DIRECT fails as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    if (!native) return t.skip('native module not built');
    // procfs refuses O_DIRECT everywhere
    sameFailure(['convert', '-T', 'none', '-f', 'raw', '-O', 'raw', '/proc/version', 'proc-out.raw']);
    assert.equal(existsSync(join(cwd, 'proc-out.raw')), false);
    sameFailure(['compare', '-T', 'none', '-f', 'raw', '-F', 'raw', '/proc/version', '/proc/version']);
    // tmpfs refuses O_DIRECT before Linux 6.6: either both tools fail the same way or both succeed
    if (existsSync('/dev/shm')) {
      const out = `/dev/shm/vdisk-cache-diff-${process.pid}`;
      try {
        const q = qemuImg(['convert', '-t', 'none', '-O', 'raw', 'odd.raw', `${out}.q`], { cwd });
        const v = vdisk(['convert', '-t', 'none', '-O', 'raw', 'odd.raw', `${out}.v`], { cwd });
        assert.equal(v.status, q.status, v.stderr);
        assert.equal(v.stderr, asVdisk(q.stderr).replaceAll(`${out}.q`, `${out}.v`));
        if (q.status === 0) sameContent(`${out}.q`, `${out}.v`);
        else assert.equal(existsSync(`${out}.v`), false, 'no target left behind');
      } finally {
        for (const f of [`${out}.q`, `${out}.v`]) rmSync(f, { force: true });
      }
    }
  });

  it('without the native module, direct modes fail clearly and leave no target', (t) => {
    if (!requireQemu(t)) return;
    const env = { VDISK_NO_NATIVE: '1' };
    for (const [opt, name] of [['-t', 'nonative-t.raw'], ['-T', 'nonative-T.raw']] as const) {
      const r = vdisk(['convert', opt, 'directsync', '-O', 'raw', 'odd.raw', name], { cwd, env });
      const shown = opt === '-t' ? name : 'odd.raw';
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr,
        `vdisk: Could not open '${shown}': Could not open '${shown}': cache mode 'directsync' needs direct I/O, which needs vdisk's native module (not built, or VDISK_NO_NATIVE is set)\n`,
      );
      assert.equal(existsSync(join(cwd, name)), false);
    }
    // the other modes need nothing native
    const r = vdisk(['convert', '-t', 'writethrough', '-T', 'unsafe', '-O', 'qcow2', 'top.qcow2', 'nonative.qcow2'], { cwd, env });
    assert.equal(r.status, 0, r.stderr);
    sameContent('top.qcow2', 'nonative.qcow2');
  });

  it('-t unsafe never flushes; the default (writeback) flushes the target', async (t) => {
    if (!requireQemu(t)) return;
    // count fdatasync calls by spying on FdHandle.prototype.datasync (file stores' handles)
    const proto = FdHandle.prototype as { datasync: () => Promise<void> };
    const original = proto.datasync;
    let calls = 0;
    proto.datasync = function (this: unknown) {
      calls++;
      return original.call(this);
    };
    try {
      const syncs = async (targetCache: 'unsafe' | undefined, out: string): Promise<number> => {
        calls = 0;
        await convert(join(cwd, 'odd.raw'), join(cwd, out), { targetFormat: 'qcow2', targetCache });
        sameContent('odd.raw', out);
        return calls;
      };
      assert.equal(await syncs('unsafe', 'sync-unsafe.qcow2'), 0);
      assert.ok((await syncs(undefined, 'sync-default.qcow2')) > 0);
    } finally {
      proto.datasync = original;
    }
  });

  it('bad cache mode names give qemu-img messages and exit codes', (t) => {
    if (!requireQemu(t)) return;
    sameFailure(['convert', '-t', 'bogus', '-O', 'raw', 'odd.raw', 'bogus1.raw']);
    sameFailure(['convert', '-T', 'bogus', '-O', 'raw', 'odd.raw', 'bogus2.raw']);
    sameFailure(['convert', '-T', 'bogus', '-t', 'bogus', 'odd.raw', 'bogus3.raw']);
    sameFailure(['compare', '-T', 'bogus', 'odd.raw', 'odd.raw']);
    sameFailure(['compare', '-T', 'bogus', 'odd.raw']);
  });
});
