/**
 * A convert whose target writes fail (here: a file size limit, EFBIG, as a
 * full disk gives ENOSPC) says what qemu-img says — `error while writing at
 * byte N: <the system's reason>`, N the first byte of the failing request
 * in the guest, the first such request when several fail — exits 1 and,
 * unlike qemu-img, leaves neither the target nor a temporary file behind.
 * A target refused at create is worded as qemu-img convert words it
 * (`Could not resize file: …`), not as qemu-img create does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, VDISK_BIN } from '../helpers/cli.js';
import { hasQemu, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-write-errors-');
after(() => dir.cleanup());
const src = join(dir.path, 'src.raw');

before(() => {
  if (!hasQemu) return;
  qemuImgOk(['create', '-q', '-f', 'raw', src, '4M']);
  qemuIo(src, ['write -P 0x21 0 4M'], 'raw');
});

/** Runs `cmd args` with files limited to `kib` KiB, 1 MiB unless told (SIGXFSZ ignored, so writes past it fail with EFBIG). */
function limited(cmd: string, args: readonly string[], kib = 1024): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `ulimit -f ${kib}; trap "" XFSZ; exec "$@"`, 'limited', cmd, ...args], { cwd: dir.path, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('convert: failed target writes worded as qemu-img words them', () => {
  for (const fmt of ['qcow2', 'vmdk', 'vpc', 'vdi']) {
    it(`-O ${fmt} past a file size limit`, (t) => {
      if (!requireQemu(t)) return;
      const ours = join(dir.path, `v.${fmt}`);
      const theirs = join(dir.path, `q.${fmt}`);
      const q = limited('qemu-img', ['convert', '-O', fmt, src, theirs]);
      const v = limited(process.execPath, [VDISK_BIN, 'convert', '-O', fmt, src, ours]);
      assert.equal(q.status, 1, q.stderr);
      assert.equal(v.status, 1, v.stderr);
      assert.equal(v.stderr, asVdisk(q.stderr));
      assert.match(v.stderr, /^vdisk: error while writing at byte 0: File too large\n$/);
      assert.ok(!existsSync(ours), 'no target is left behind');
      assert.deepEqual(readdirSync(dir.path).filter((f) => f.includes('.vdisk-')), [], 'no temporary file is left behind');
    });
  }

  for (const [fmt, ...opts] of [['raw'], ['vpc', '-o', 'subformat=fixed'], ['vhdx']] as const) {
    it(`-O ${fmt} ${opts.join(' ')}: a target the size limit refuses at create, in convert's words (not create's)`, (t) => {
      if (!requireQemu(t)) return;
      const q = limited('qemu-img', ['convert', '-O', fmt, ...opts, src, join(dir.path, `qc.${fmt}`)]);
      const v = limited(process.execPath, [VDISK_BIN, 'convert', '-O', fmt, ...opts, src, join(dir.path, `vc.${fmt}`)]);
      assert.equal(v.status, 1, v.stderr);
      assert.equal(v.stderr.replace(`vc.${fmt}`, `qc.${fmt}`), asVdisk(q.stderr));
      assert.match(v.stderr, /error while converting \w+: Could not resize file: File too large\n$/);
      assert.ok(!existsSync(join(dir.path, `vc.${fmt}`)));
    });
  }

  it("a target the size limit refuses while it is made: qemu-img's step words for each format and preallocation (convert), create's own (create)", (t) => {
    if (!requireQemu(t)) return;
    // 64 KiB: the first metadata write past the header fails; 1000 KiB: the growth to the image's size fails.
    for (const kib of [64, 1000]) {
      for (const fmt of ['qcow2', 'raw', 'vhdx', 'vpc']) {
        for (const prealloc of ['off', 'metadata', 'falloc', 'full']) {
          if ((prealloc === 'metadata' && fmt !== 'qcow2') || (fmt === 'vpc' && prealloc !== 'off')) continue;
          const o = fmt === 'vpc' ? ['-o', 'subformat=fixed'] : ['-o', `preallocation=${prealloc}`];
          for (const cmd of [['convert', '-O', fmt, ...o, src], ['create', '-f', fmt, ...o]]) {
            const tail = cmd[0] === 'create' ? ['4M'] : [];
            const q = limited('qemu-img', [...cmd, join(dir.path, `qe.${fmt}`), ...tail], kib);
            const v = limited(process.execPath, [VDISK_BIN, ...cmd, join(dir.path, `ve.${fmt}`), ...tail], kib);
            const what = `${cmd.join(' ')} (limit ${kib} KiB)`;
            assert.equal(v.status, q.status, `${what}: ${v.stderr}`);
            assert.equal(v.stderr.replaceAll(`ve.${fmt}`, `qe.${fmt}`), asVdisk(q.stderr), what);
            assert.equal(v.stdout.replaceAll(`ve.${fmt}`, `qe.${fmt}`), q.stdout, what);
            rmSync(join(dir.path, `qe.${fmt}`), { force: true });
            rmSync(join(dir.path, `ve.${fmt}`), { force: true });
          }
        }
      }
    }
  });

  it("qcow2 metadata preallocation and L1 growth past a file size limit fail in qemu-img's step words", (t) => {
    if (!requireQemu(t)) return;
    const same = (what: string, args: (name: string) => string[], kib: number, make?: (name: string) => void): void => {
      for (const name of ['qm.qcow2', 'vm.qcow2']) {
        rmSync(join(dir.path, name), { force: true });
        make?.(join(dir.path, name));
      }
      const q = limited('qemu-img', args(join(dir.path, 'qm.qcow2')), kib);
      const v = limited(process.execPath, [VDISK_BIN, ...args(join(dir.path, 'vm.qcow2'))], kib);
      assert.equal(v.status, q.status, `${what}: ${v.stderr}`);
      assert.equal(v.stderr.replaceAll('vm.qcow2', 'qm.qcow2'), asVdisk(q.stderr), what);
      assert.equal(v.stdout.replaceAll('vm.qcow2', 'qm.qcow2'), q.stdout, what);
    };
    // qemu writes each new L2 table as it allocates it, before growing the file to the data's end:
    // between the two, "Allocating clusters failed"; past both, "Could not resize file".
    const big = join(dir.path, 'big.raw');
    writeFileSync(big, new Uint8Array(0));
    truncateSync(big, 64 * 1024 * 1024);
    for (const cs of [4096, 65536]) {
      for (const kib of [150, 200, 260, 330, 400, 1000]) {
        const o = ['-o', `preallocation=metadata,cluster_size=${cs}`];
        same(`convert ${o.join(' ')} (limit ${kib} KiB)`, (f) => ['convert', '-O', 'qcow2', ...o, big, f], kib);
        same(`create ${o.join(' ')} (limit ${kib} KiB)`, (f) => ['create', '-f', 'qcow2', ...o, f, '64M'], kib);
      }
    }
    // A new image's L1 table is made as qemu grows the image to its size: with 512-byte clusters it may not fit.
    for (const prealloc of ['off', 'metadata']) {
      const o = ['-o', `preallocation=${prealloc},cluster_size=512`];
      same(`convert ${o.join(' ')} (limit 8 KiB)`, (f) => ['convert', '-O', 'qcow2', ...o, big, f], 8);
    }
    // Growing 64 MiB to 1 GiB: a bigger L1 table ("Failed to grow the L1 table"), new L2 tables ("Allocating clusters failed").
    for (const [cs, kib, modes] of [[65536, 200, ['off', 'metadata', 'falloc', 'full']], [4096, 300, ['metadata']], [4096, 3000, ['metadata']]] as const) {
      for (const mode of modes) {
        const make = (f: string): void => void qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cs}`, f, '64M']);
        same(`resize --preallocation=${mode} cluster_size=${cs} (limit ${kib} KiB)`, (f) => ['resize', `--preallocation=${mode}`, f, '1G'], kib, make);
      }
    }
    // The L1 table qemu refuses to grow past 32 MiB, in the same words.
    const small = (f: string): void => void qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', f, '1G']);
    same('resize cluster_size=512 to 100T', (f) => ['resize', f, '100T'], 1024 * 1024, small);
  });

  it("commit, rebase and snapshot -c past a file size limit fail in qemu-img's words", (t) => {
    if (!requireQemu(t)) return;
    const f = (name: string): string => join(dir.path, name);
    const chain = (who: string, cs: number): void => {
      for (const n of ['b', 't', 'n']) rmSync(f(`${who}${n}.qcow2`), { force: true });
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cs}`, f(`${who}b.qcow2`), '64M']);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', f(`${who}b.qcow2`), '-F', 'qcow2', f(`${who}t.qcow2`)]);
      qemuIo(f(`${who}t.qcow2`), ['write -P 5 0 3M'], 'qcow2');
    };
    const same = (what: string, args: (who: string) => string[], kib: number): void => {
      const q = limited('qemu-img', args('q'), kib);
      const v = limited(process.execPath, [VDISK_BIN, ...args('v')], kib);
      assert.equal(v.status, q.status, `${what}: ${v.stderr}`);
      assert.equal(v.stderr.replaceAll(dir.path + '/v', dir.path + '/q'), asVdisk(q.stderr), what);
    };
    // qemu-img commit runs a block job: "Block job failed: File too large".
    for (const [cs, kib] of [[65536, 300], [65536, 2000], [4096, 1000]] as const) {
      chain('q', cs);
      chain('v', cs);
      same(`commit cluster_size=${cs} (limit ${kib} KiB)`, (who) => ['commit', f(`${who}t.qcow2`)], kib);
    }
    // rebase onto an empty image copies the old backing file's data: "Error while writing to COW image".
    for (const kib of [400, 2000]) {
      for (const who of ['q', 'v']) {
        chain(who, 65536);
        qemuIo(f(`${who}b.qcow2`), ['write -P 7 4M 3M'], 'qcow2');
        qemuImgOk(['create', '-q', '-f', 'qcow2', f(`${who}n.qcow2`), '64M']);
      }
      same(`rebase (limit ${kib} KiB)`, (who) => ['rebase', '-b', f(`${who}n.qcow2`), '-F', 'qcow2', f(`${who}t.qcow2`)], kib);
    }
    // snapshot -c: the system's errno, as qemu prints it (-27, not EIO's -5).
    for (const kib of [200, 1000]) {
      for (const who of ['q', 'v']) {
        chain(who, 65536);
        qemuIo(f(`${who}t.qcow2`), ['write -P 9 8M 1M'], 'qcow2');
      }
      same(`snapshot -c (limit ${kib} KiB)`, (who) => ['snapshot', '-c', 's1', f(`${who}t.qcow2`)], kib);
    }
  });

  it("resize with preallocation past a file size limit fails in qemu-img's step words (qcow2, raw)", (t) => {
    if (!requireQemu(t)) return;
    // 200 KiB: the new refcount structures (falloc, full) cannot be written; 400 and 1000 KiB: the growth itself fails.
    for (const [kib, modes] of [[200, ['falloc', 'full']], [400, ['metadata', 'falloc', 'full']], [1000, ['metadata', 'falloc', 'full']]] as const) {
      for (const mode of modes) {
        for (const name of ['qr.qcow2', 'vr.qcow2']) qemuImgOk(['create', '-q', '-f', 'qcow2', join(dir.path, name), '1M']);
        const q = limited('qemu-img', ['resize', `--preallocation=${mode}`, join(dir.path, 'qr.qcow2'), '8M'], kib);
        const v = limited(process.execPath, [VDISK_BIN, 'resize', `--preallocation=${mode}`, join(dir.path, 'vr.qcow2'), '8M'], kib);
        const what = `resize --preallocation=${mode} (limit ${kib} KiB)`;
        assert.equal(v.status, q.status, `${what}: ${v.stderr}`);
        assert.equal(v.stderr.replaceAll('vr.qcow2', 'qr.qcow2'), asVdisk(q.stderr), what);
      }
    }
    // A raw file: file-posix's own words (off and full truncate first, falloc only fallocates).
    for (const mode of ['off', 'falloc', 'full']) {
      for (const name of ['qr.raw', 'vr.raw']) qemuImgOk(['create', '-q', '-f', 'raw', join(dir.path, name), '512K']);
      const q = limited('qemu-img', ['resize', '-f', 'raw', `--preallocation=${mode}`, join(dir.path, 'qr.raw'), '8M']);
      const v = limited(process.execPath, [VDISK_BIN, 'resize', '-f', 'raw', `--preallocation=${mode}`, join(dir.path, 'vr.raw'), '8M']);
      assert.equal(v.status, q.status, v.stderr);
      assert.equal(v.stderr.replaceAll('vr.raw', 'qr.raw'), asVdisk(q.stderr), `raw resize --preallocation=${mode}`);
    }
  });

  for (const sparse of [[], ['-S', '0']]) {
    it(`-n into a raw file ${sparse.join(' ')}: the first failing request is named, whichever failed first`, (t) => {
      if (!requireQemu(t)) return;
      const ours = join(dir.path, 'v.raw');
      const theirs = join(dir.path, 'q.raw');
      qemuImgOk(['create', '-q', '-f', 'raw', ours, '4M']);
      qemuImgOk(['create', '-q', '-f', 'raw', theirs, '4M']);
      const q = limited('qemu-img', ['convert', '-n', ...sparse, '-O', 'raw', src, theirs]);
      for (let i = 0; i < 3; i++) {
        const v = limited(process.execPath, [VDISK_BIN, 'convert', '-n', ...sparse, '-O', 'raw', src, ours]);
        assert.equal(v.status, 1, v.stderr);
        assert.equal(v.stderr, asVdisk(q.stderr));
      }
      assert.match(q.stderr, /^qemu-img: error while writing at byte 0: File too large\n$/);
    });
  }
});
