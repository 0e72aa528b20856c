/**
 * Messages and exit codes the sweep found differing from qemu-img 7.2,
 * one command line each: the same status, stdout and stderr (qemu's
 * `Detected format of X.` hint has no newline; vdisk ends every hint with
 * one, a deliberate difference the comparison allows).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { requireQemu, tmpDir } from '../helpers/qemu.js';
import { pairDiffs, pool, runPair, type PairCase } from '../helpers/validate-pair.js';

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

const CASES: PairCase[] = [
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
  { args: ['convert', '-o', 'backing_file=b.qcow2', '-O', 'qcow2', 'o.qcow2', 'n.qcow2'], setup: CHAIN },
  { args: ['convert', '-n', '-O', 'qcow2', 'o.qcow2', 's.qcow2'], setup: SMALL },
  ...['metadata', 'falloc', 'full', 'off'].map((p): PairCase => ({ args: ['convert', '-c', '-O', 'qcow2', '-o', `preallocation=${p}`, 'o.qcow2', 'n.qcow2'], setup: CHAIN })),
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
];

const hintNewline = (s: string): string => s.replace(/^(Detected format of \w+\.)(?!\n)/m, '$1\n');

describe('messages and exit codes equal qemu-img', () => {
  it('status, stdout and stderr', async (t) => {
    if (!requireQemu(t)) return;
    const results = await pool(CASES, 4, (c, i) => runPair(dir.path, `m${i}`, c));
    const diffs = pairDiffs(CASES, results, ['status', 'stdout', 'stderr', 'check', 'map'], (q) => ({ ...q, stderr: hintNewline(q.stderr) }));
    assert.deepEqual(diffs, []);
  });
});
