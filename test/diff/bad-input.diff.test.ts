/**
 * Bad input on the command line: the same message as qemu-img (with
 * `vdisk:` for `qemu-img:`), a non-zero exit, no stack trace, nothing written.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
writeFileSync(join(dir.path, 'exists.img'), Buffer.alloc(4096));

const CASES: { name: string; args: string[]; creates?: string }[] = [
  { name: 'info of a missing file', args: ['info', 'missing.img'] },
  { name: 'info with an unknown format', args: ['info', '-f', 'nosuch', 'exists.img'] },
  { name: 'info without a file', args: ['info'] },
  { name: 'info with a bad --output', args: ['info', '--output=xml', 'exists.img'] },
  { name: 'create with size 1Q', args: ['create', '-f', 'raw', 'new1.img', '1Q'], creates: 'new1.img' },
  { name: 'create with size -5', args: ['create', '-f', 'raw', 'new2.img', '--', '-5'], creates: 'new2.img' },
  { name: 'create with size 99999E', args: ['create', '-f', 'raw', 'new3.img', '99999E'], creates: 'new3.img' },
  { name: 'create with size 1e3', args: ['create', '-f', 'raw', 'new4.img', '1e3'], creates: 'new4.img' },
  { name: 'create with size 9E', args: ['create', '-f', 'raw', 'new4b.img', '9E'], creates: 'new4b.img' },
  { name: 'create with an unknown format', args: ['create', '-f', 'nosuch', 'new5.img', '1M'], creates: 'new5.img' },
  { name: 'create with an unknown -o option', args: ['create', '-f', 'raw', '-o', 'bogus=1', 'new6.img', '1M'], creates: 'new6.img' },
  { name: 'create with a bad -o size', args: ['create', '-f', 'raw', '-o', 'size=abc', 'new7.img'], creates: 'new7.img' },
  { name: 'create without a size', args: ['create', '-f', 'raw', 'new8.img'], creates: 'new8.img' },
  { name: 'create with the size twice', args: ['create', '-f', 'raw', '-o', 'size=1M', 'new9.img', '2M'], creates: 'new9.img' },
  { name: 'create with a backing file on raw', args: ['create', '-f', 'raw', '-b', 'exists.img', '-F', 'raw', 'new10.img', '1M'], creates: 'new10.img' },
  { name: 'create without a file name', args: ['create', '-f', 'raw'] },
  { name: 'create with an extra argument', args: ['create', '-f', 'raw', 'new11.img', '1M', '2M'], creates: 'new11.img' },
  { name: 'an unknown command', args: ['bogus'] },
  { name: 'an unknown option', args: ['create', '-Z'] },
  { name: 'a missing option argument', args: ['info', '-f'] },
  { name: 'convert to an unknown format', args: ['convert', '-O', 'nosuch', 'exists.img', 'new12.img'], creates: 'new12.img' },
  { name: 'convert of a missing source', args: ['convert', '-O', 'raw', 'missing.img', 'new13.img'], creates: 'new13.img' },
  { name: 'convert with -m 0', args: ['convert', '-m', '0', 'exists.img', 'new14.img'], creates: 'new14.img' },
  { name: 'convert with -S 5', args: ['convert', '-S', '5', 'exists.img', 'new15.img'], creates: 'new15.img' },
  { name: 'convert with -S -5', args: ['convert', '-S', '-5', 'exists.img', 'new16.img'], creates: 'new16.img' },
  { name: 'convert with a bad cache mode', args: ['convert', '-t', 'bogus', 'exists.img', 'new17.img'] },
  { name: 'convert --target-is-zero without -n', args: ['convert', '--target-is-zero', 'exists.img', 'new18.img'], creates: 'new18.img' },
  { name: 'convert -o with -n', args: ['convert', '-n', '-o', 'size=1M', 'exists.img', 'exists.img'] },
  { name: 'convert -c to raw', args: ['convert', '-c', 'exists.img', 'new19.img'], creates: 'new19.img' },
  { name: 'convert -B to raw', args: ['convert', '-O', 'raw', '-B', 'x', '-F', 'raw', 'exists.img', 'new20.img'], creates: 'new20.img' },
  { name: 'convert with a bad -o value', args: ['convert', '-O', 'raw', '-o', 'preallocation=bad', 'exists.img', 'new22.img'], creates: 'new22.img' },
  { name: 'convert with an unknown -o option', args: ['convert', '-O', 'raw', '-o', 'bogus=1', 'exists.img', 'new23.img'], creates: 'new23.img' },
  { name: 'convert -C with -c', args: ['convert', '-C', '-c', '-O', 'raw', 'exists.img', 'new21.img'], creates: 'new21.img' },
  { name: 'convert -n onto a missing target', args: ['convert', '-n', 'exists.img', 'missing-target.img'], creates: 'missing-target.img' },
];

describe('bad input gives qemu-img\'s message and exit status', () => {
  for (const c of CASES) {
    it(c.name, (t) => {
      if (!requireQemu(t)) return;
      const theirs = qemuImg(c.args, { cwd: dir.path });
      if (c.creates) assert.equal(existsSync(join(dir.path, c.creates)), false, 'qemu-img left a file; the case is wrong');
      const ours = vdisk(c.args, { cwd: dir.path });
      assert.notEqual(ours.status, 0);
      assert.equal(ours.status, theirs.status);
      assert.equal(ours.stderr, asVdisk(theirs.stderr).replace(/Detected format of [a-z0-9]+\./, ''));
      assert.doesNotMatch(ours.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(ours.stdout, theirs.stdout);
      if (c.creates) assert.equal(existsSync(join(dir.path, c.creates)), false, 'nothing written');
    });
  }
});
