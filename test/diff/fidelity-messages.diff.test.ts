/**
 * Messages and exit codes the sweep found differing from qemu-img 7.2,
 * one command line each: the same status, stdout and stderr (qemu's
 * `Detected format of X.` hint has no newline; vdisk ends every hint with
 * one, a deliberate difference the comparison allows).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { requireQemu, tmpDir } from '../helpers/qemu.js';
import { pool, runPair, type PairCase } from '../helpers/validate-pair.js';

const dir = tmpDir('vdisk-fidelity-messages-');
after(() => dir.cleanup());

const CHAIN = ['qemu-img create -q -f qcow2 b.qcow2 1M', 'qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 o.qcow2'];
const MISSING = [...CHAIN, 'rm b.qcow2'];
const DIRTY = [
  'qemu-img create -q -f qcow2 -o lazy_refcounts=on d.qcow2 4M',
  "sh -c \"ulimit -c 0; qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 4k' -c abort d.qcow2; true\"",
];
// A data-file image whose image file was copied sparse: qemu then judges it metadata-preallocated and asks the data file for holes.
const SPARSE_DF = [
  'qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 4M',
  "qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1000000 3000' -c 'write -P 0x33 2M 192k' -c 'write -P 0x55 4190208 4096' df.qcow2",
  'cp --sparse=always df.qcow2 s.qcow2',
];
const SMALL = [...CHAIN, 'qemu-img create -q -f qcow2 s.qcow2 512k'];

const COMPARE = [
  'qemu-img create -q -f raw a.raw 4M',
  'qemu-img create -q -f raw b.raw 8M',
  'qemu-img create -q -f raw c.raw 4M',
  "qemu-io -f raw -c 'write -P 1 0 512' c.raw",
  'qemu-img create -q -f raw d.raw 8M',
  "qemu-io -f raw -c 'write -P 1 6M 512' d.raw",
  'touch e.raw',
];

/**
 * `files: false`: the files left behind are not compared; `stdout: false`: nor is stdout;
 * `node`: the name vdisk gives where qemu names an internal node (`#blockNNN`).
 */
const CASES: (PairCase & { files?: false; stdout?: false; stderr?: false; node?: string })[] = [
  // a backing file that is gone, named as the image names it
  { args: ['info', 'o.qcow2'], setup: MISSING },
  { args: ['check', 'o.qcow2'], setup: MISSING },
  { args: ['convert', '-O', 'raw', 'o.qcow2', 'x.raw'], setup: MISSING },
  { args: ['map', 'o.qcow2'], setup: MISSING },
  // create -b without -F: the backing file is opened first, and its format named
  { args: ['create', '-f', 'qcow2', '-b', 'b.qcow2', 'n.qcow2', '1M'], setup: CHAIN },
  { args: ['create', '-f', 'qcow2', '-b', 'missing.qcow2', 'n.qcow2'], setup: CHAIN },
  { args: ['create', '-f', 'qcow2', '-b', 'missing.qcow2', '-F', 'qcow2', 'n.qcow2'], setup: CHAIN },
  { args: ['create', '-f', 'qcow2', '-u', '-b', 'b.qcow2', 'n.qcow2', '1M'], setup: CHAIN },
  // convert's own wording
  { args: ['convert', '-B', 'b.qcow2', '-O', 'qcow2', 'o.qcow2', 'n.qcow2'], setup: CHAIN },
  // the target is created without opening -B's file: -F is checked first, the target's open reports a missing one
  { args: ['convert', '-B', 'nosuch.qcow2', '-O', 'qcow2', 'o.qcow2', 'n.qcow2'], setup: CHAIN },
  // (qemu leaves the target it could not reopen; vdisk removes it: files not compared)
  { args: ['convert', '-B', 'nosuch.qcow2', '-F', 'qcow2', '-O', 'qcow2', 'o.qcow2', 'n.qcow2'], setup: CHAIN, files: false },
  { args: ['convert', '-o', 'backing_file=b.qcow2', '-O', 'qcow2', 'o.qcow2', 'n.qcow2'], setup: CHAIN },
  { args: ['convert', '-n', '-O', 'qcow2', 'o.qcow2', 's.qcow2'], setup: SMALL },
  // (qemu pads a compressed target's file to a whole sector: file lengths not compared)
  ...['metadata', 'falloc', 'full', 'off'].map((p) => ({ args: ['convert', '-c', '-O', 'qcow2', '-o', `preallocation=${p}`, 'o.qcow2', 'n.qcow2'], setup: CHAIN, files: false as const })),
  // -p prints what qemu-img prints, line for line, where every byte is data (over holes and zeros
  // vdisk counts progress over the whole image, qemu-img over the data only: a deliberate difference)
  { args: ['convert', '-p', '-O', 'qcow2', 'p.raw', 'p.qcow2'], setup: ['qemu-img create -q -f raw p.raw 16M', "qemu-io -f raw -c 'write -P 1 0 16M' p.raw"] },
  // snapshot without an action opens the image for writing (and repairs a dirty one)
  { args: ['snapshot', 'd.qcow2'], setup: DIRTY, image: 'd.qcow2', format: 'qcow2' },
  { args: ['snapshot', 'nosuch.qcow2'], setup: CHAIN },
  // block status recurses into an external data file as it does into the image file
  { args: ['map', '--output=json', 's.qcow2'], setup: SPARSE_DF },
  { args: ['map', 's.qcow2'], setup: SPARSE_DF },
  // --object is validated as qemu-img parses it
  ...['bogus,id=x', 'secret,data=x', 'secret,id=s0,data=x', 'secret,id=s0', 'secret,id=s0,data=x,file=y', 'secret,id=0s,data=x', 'secret,id=s0,data=x,bogus=1', 'iothread,id=i', 'id=x', 'help', '{"qom-type":"secret","id":"s","data":"x"}'].map(
    (o): PairCase => ({ args: ['info', '--object', o, 'o.qcow2'], setup: CHAIN }),
  ),
  { args: ['convert', '--object', 'bogus,id=x', '-O', 'raw', 'o.qcow2', 'x.raw'], setup: CHAIN },
  // the backing file's own open error, without the `Could not open 'x':` wrapper
  { args: ['create', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'bogus', 'n.qcow2'], setup: CHAIN },
  { args: ['create', '-f', 'vmdk', '-b', 'v.vmdk', '-o', 'backing_fmt=qcow2', 'n.vmdk'], setup: ['qemu-img create -q -f vmdk v.vmdk 1M'] },
  { args: ['rebase', '-b', 'nosuch.qcow2', '-F', 'qcow2', 'o.qcow2'], setup: CHAIN },
  { args: ['rebase', '-b', 'nosuch.qcow2', '-F', 'qcow2', 'sub/o.qcow2'], setup: [...CHAIN, 'mkdir sub', 'cp o.qcow2 sub/'] },
  { args: ['rebase', '-b', 'o.qcow2', '-F', 'qcow2', 'o.qcow2'], setup: CHAIN },
  { args: ['rebase', '-b', 'o.qcow2', '-F', 'raw', 'b.qcow2'], setup: CHAIN },
  { args: ['rebase', '-b', 'b.qcow2', '-F', 'bogus', 'o.qcow2'], setup: CHAIN },
  { args: ['rebase', '-u', '-b', '', '-F', 'bogus', 'o.qcow2'], setup: CHAIN },
  // a data file that cannot be made, or that is the image itself (removed again, as qemu's create does)
  // (the image itself as its data file: qemu's "is not a regular file" line from deleting it twice, then the "shared" lock)
  ...['data_file=', 'data_file=nodir/d.raw', 'data_file=sub'].map((o): PairCase => ({ args: ['create', '-f', 'qcow2', '-o', o, 'n.qcow2', '4M'], setup: ['mkdir sub'] })),
  ...['data_file=n.qcow2', 'data_file=./n.qcow2'].map((o): PairCase => ({ args: ['create', '-f', 'qcow2', '-o', o, 'n.qcow2', '4M'], setup: ['mkdir sub'] })),
  { args: ['create', '-f', 'qcow2', '-o', 'data_file=sub/n.qcow2', 'sub/n.qcow2', '4M'], setup: ['mkdir sub'] },
  { args: ['convert', '-O', 'qcow2', '-o', 'data_file=n.qcow2', 'b.qcow2', 'n.qcow2'], setup: CHAIN, stderr: false },
  // a relative data file name is relative to the working directory (qemu opens it as given, without path_combine)
  { args: ['create', '-f', 'qcow2', '-o', 'data_file=d.raw', 'sub/q.qcow2', '1M'], setup: ['mkdir sub'] },
  { args: ['convert', '-O', 'raw', 'sub/q.qcow2', 'x.raw'], setup: ['mkdir sub', 'qemu-img create -q -f qcow2 -o data_file=d.raw sub/q.qcow2 1M', "qemu-io -c 'write -P 7 0 64k' sub/q.qcow2"] },
  { args: ['convert', '-O', 'raw', 'sub/q.qcow2', 'x.raw'], setup: ['mkdir sub', 'qemu-img create -q -f qcow2 -o data_file=d.raw sub/q.qcow2 1M', 'mv d.raw sub/'] },
  // info never opens the data file (qemu's fix for CVE-2024-4467): it describes an image whose data file is gone
  ...[['info', 'q.qcow2'], ['info', '--output=json', 'q.qcow2'], ['info', '--backing-chain', 'q.qcow2'], ['check', 'q.qcow2'], ['map', 'q.qcow2']].map(
    (a): PairCase => ({ args: a, setup: ['qemu-img create -q -f qcow2 -o data_file=gone.raw q.qcow2 1M', 'rm gone.raw'] }),
  ),
  // a missing backing file of a new vmdk is named as qemu combines it with the target's name
  ...['t.vmdk', 'sub/t.vmdk'].map((t) => ({ args: ['convert', '-O', 'vmdk', '-F', 'vmdk', '-B', 'missing.vmdk', 'e.raw', t], setup: ['mkdir sub', 'qemu-img create -q -f raw e.raw 1M'], files: false as const })),
  // a 0-byte vmdk: qemu cannot open what it wrote, and says so under the target's name (never a temporary one);
  // qemu leaves that file behind, vdisk removes its temporary file (files not compared)
  { args: ['convert', '-f', 'raw', '-O', 'vmdk', 'e.raw', 'n.vmdk'], setup: ['touch e.raw'], files: false },
  { args: ['convert', '-O', 'vmdk', '-o', 'hwversion=4', 'e.qcow2', 'n.vmdk'], setup: ['qemu-img create -q -f qcow2 e.qcow2 0'], files: false },
  { args: ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', 'e.raw', 'n.vmdk'], setup: ['touch e.raw'], files: false },
  { args: ['info', 'e.vmdk'], setup: ['qemu-img create -q -f vmdk e.vmdk 0'] },
  // compare -p: the result is printed on the open progress line, the size warning when the tail is reached
  ...['a.raw b.raw', 'a.raw c.raw', '-s a.raw b.raw', 'a.raw a.raw', 'a.raw d.raw', 'e.raw d.raw', 'e.raw e.raw'].map(
    (ops): PairCase => ({ args: ['compare', '-p', ...ops.split(' ')], setup: COMPARE }),
  ),
  { args: ['convert', '-p', '-O', 'raw', 'e.raw', 'n.raw'], setup: COMPARE },
  // measure: a size option's parse error keeps its suffix lines
  { args: ['measure', '-O', 'qcow2', '-o', 'cluster_size=1x', '--size', '1M'] },
  { args: ['measure', '-O', 'qcow2', '-o', 'refcount_bits=x', '--size', '1M'] },
  // -T is the source cache mode, in every command's words
  { args: ['check', '-T', 'bogus', 'b.qcow2'], setup: CHAIN },
  { args: ['rebase', '-T', 'bogus', '-b', 'b.qcow2', '-F', 'qcow2', 'o.qcow2'], setup: CHAIN },
  { args: ['rebase', '-t', 'bogus', '-T', 'bogus', '-b', 'b.qcow2', '-F', 'qcow2', 'o.qcow2'], setup: CHAIN },
  { args: ['compare', '-T', 'bogus', 'b.qcow2', 'b.qcow2'], setup: CHAIN },
  { args: ['convert', '-T', 'bogus', 'b.qcow2', 'x.raw'], setup: CHAIN },
  // a backing file for several sources, however it is given
  ...[['-B', 'b.qcow2', '-F', 'qcow2'], ['-B', 'b.qcow2'], ['-o', 'backing_file=b.qcow2,backing_fmt=qcow2'], ['-B', 'nosuch', '-F', 'qcow2'], ['-n', '-B', 'b.qcow2', '-F', 'qcow2']].map(
    (o): PairCase => ({ args: ['convert', ...o, '-O', 'qcow2', 'o.qcow2', 'o.qcow2', o.includes('-n') ? 'b.qcow2' : 'n.qcow2'], setup: CHAIN }),
  ),
  { args: ['convert', '-B', 'b.qcow2', '-F', 'qcow2', '-O', 'raw', 'o.qcow2', 'o.qcow2', 'n.raw'], setup: CHAIN },
  // bench: aio=native needs O_DIRECT once the file is open; -U refused for writing before it is
  ...[['-n'], ['-i', 'native'], ['-n', '-i', 'threads'], ['-n', '-t', 'writeback'], ['-w', '-U'], ['-n', '-w', '-U']].flatMap((o) =>
    ['b.qcow2', 'nosuch.qcow2', 'sub'].map((f): PairCase => ({ args: ['bench', '-c', '1', ...o, f], setup: [...CHAIN, 'mkdir sub'] })),
  ),
  { args: ['bench', '-c', '1', '-n', '-f', 'qcow2', 'r.raw'], setup: ['qemu-img create -q -f raw r.raw 1M'] },
  // snapshot -a with an external data file: refused before the snapshot is looked for
  ...['data_file=q.data', 'data_file=q.data,data_file_raw=on'].flatMap((o) =>
    ['s1', '1'].map((n): PairCase => ({ args: ['snapshot', '-a', n, 'q.qcow2'], setup: [`qemu-img create -q -f qcow2 -o ${o} q.qcow2 1M`] })),
  ),
  // resize past qemu's limits: int64 wrap, BDRV_MAX_LENGTH, sizes that do not fit 64 bits
  ...['qcow2', 'raw', 'vdi', 'vpc', 'vhdx', 'vmdk'].flatMap((f) =>
    ['9223372036854775807', '9223372036854775808', '9223372035781033985', '18446744073709551615', '18446744073709551616', '16E'].map(
      (n): PairCase => ({ args: ['resize', '-f', f, 'x.img', n], setup: [`qemu-img create -q -f ${f} x.img 1M`] }),
    ),
  ),
  { args: ['resize', 'o.qcow2', '+9223372036854775807'], setup: CHAIN },
  { args: ['create', '-f', 'qcow2', '-o', 'cluster_size=18446744073709551616', 'n.qcow2', '1M'] },
  // commit opens writably: a probed raw image is warned about before commit's own errors
  ...[['r.raw'], ['-b', 'b.qcow2', 'r.raw'], ['-f', 'raw', 'r.raw'], ['-b', 'nosuch', 'o.qcow2'], ['sub/r.raw']].map(
    (a): PairCase => ({ args: ['commit', ...a], setup: [...CHAIN, 'qemu-img create -q -f raw r.raw 1M', 'mkdir sub', 'cp r.raw sub/'] }),
  ),
  // measure's getopt speaks for itself, and its bad-option case prints the help (vdisk's own: stdout not compared), exit 0
  ...[['--bogus-option'], ['-Z', 'b.qcow2'], ['-f'], ['--size'], ['--force-share=1', 'b.qcow2']].map(
    (a): PairCase & { stdout: false } => ({ args: ['measure', ...a], setup: CHAIN, stdout: false }),
  ),
  // the file protocol's options print in file-posix's order
  ...['raw', 'vpc', 'vdi', 'vhdx', 'vmdk', 'qcow2'].map(
    (f): PairCase => ({ args: ['create', '-f', f, '-o', 'extent_size_hint=1M,preallocation=off,nocow=on', 'x.img', '1M'] }),
  ),
  // bitmap --add refusals: every word qemu's, vdisk naming the file where qemu names its internal node (#blockNNN)
  { args: ['bitmap', '--add', '-f', 'raw', 'r.raw', 'n'], setup: ['qemu-img create -q -f raw r.raw 1M'], node: 'r.raw' },
  { args: ['bitmap', '--add', 'v2.qcow2', 'n'], setup: ['qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M'], node: 'v2.qcow2' },
  { args: ['bitmap', '--add', 'b.qcow2', 'x'.repeat(1024)], setup: CHAIN, node: 'b.qcow2' },
  // global -T: vdisk has none of qemu's trace events, so a named one is warned about as one that does not exist
  ...['bogus', 'bogus*', 'enable=bogus', '-bogus', 'bogus,file=t.log', 'events=nosuch', 'events=ev.txt', 'a,b', 'a,x=1', ''].map(
    (t): PairCase => ({ args: ['-T', t, 'info', 'b.qcow2'], setup: [...CHAIN, "printf '# c\\n\\nbogus1 \\nfoo*\\n-bogus2' > ev.txt"] }),
  ),
  { args: ['-T', 'bogus', '-T', 'other', 'info', 'nosuch'] },
  { args: ['-T', 'file=nodir/t.log', 'info', 'nosuch'] },
];

const hintNewline = (s: string): string => s.replace(/^(Detected format of \w+\.)(?!\n)/m, '$1\n');

describe('messages and exit codes equal qemu-img', () => {
  it('status, stdout and stderr', async (t) => {
    if (!requireQemu(t)) return;
    const results = await pool(CASES, 4, (c, i) => runPair(dir.path, `m${i}`, c));
    const diffs: string[] = [];
    results.forEach(({ qemu, vdisk }, i) => {
      const c = CASES[i] as (typeof CASES)[number];
      const q = { status: qemu.status, stdout: c.stdout ?? qemu.stdout, stderr: c.stderr === false ? '' : hintNewline(c.node ? qemu.stderr.replace(/#block\d+/g, c.node) : qemu.stderr).replace(/^qemu-img:/gm, 'vdisk:'), files: c.files ?? qemu.files, check: qemu.check, map: qemu.map };
      const v = { status: vdisk.status, stdout: c.stdout ?? vdisk.stdout, stderr: c.stderr === false ? '' : vdisk.stderr, files: c.files ?? vdisk.files, check: vdisk.check, map: vdisk.map };
      if (JSON.stringify(q) !== JSON.stringify(v)) diffs.push(`${c.args.join(' ')}\n  qemu:  ${JSON.stringify(q)}\n  vdisk: ${JSON.stringify(v)}`);
    });
    assert.deepEqual(diffs, []);
  });
});
