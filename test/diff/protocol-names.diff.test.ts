/**
 * File names with a protocol prefix, read as qemu reads them (block.c's
 * path_has_protocol / bdrv_find_protocol): `file:x` is the file `x` (how
 * a name with a colon is given), `host_device:` wants a device, `null-co://`
 * is qemu's null device, and an unknown prefix (`foo:bar`) is refused
 * without creating anything. Each command is run by both tools in the same
 * directory and compared: stdout, stderr and exit status.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const at = (n: string): string => join(cwd, n);

/** Runs `args` with both tools and compares what they print and return. */
function same(args: readonly string[]): void {
  const q = qemuImg(args, { cwd });
  const r = vdisk(args, { cwd });
  const what = args.join(' ');
  assert.equal(r.stderr, asVdisk(q.stderr), `stderr of ${what}`);
  assert.equal(r.stdout, q.stdout, `stdout of ${what}`);
  assert.equal(r.status, q.status, `status of ${what}`);
}

describe('protocol prefixes in file names', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
  before(() => {
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'f.qcow2', '1M'], { cwd });
    qemuImgOk(['create', '-q', '-f', 'qcow2', './my:disk.qcow2', '1M'], { cwd });
    mkdirSync(at('sub'));
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'sub/f.qcow2', '2M'], { cwd });
    // A relative `file:` backing name is relative to the working directory, not to the image (path_combine leaves it).
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-u', '-b', 'file:f.qcow2', '-F', 'qcow2', 'sub/t.qcow2', '1M'], { cwd });
  });

  it('open `file:` names as the file they name, in every reading command', (t) => {
    if (!requireQemu(t)) return;
    same(['info', `file://${at('f.qcow2')}`]);
    same(['info', '--output=json', 'file:f.qcow2']);
    same(['info', 'file:my:disk.qcow2']);
    same(['info', 'file:/nonexistent/x.qcow2']);
    same(['check', 'file:f.qcow2']);
    same(['compare', 'file:f.qcow2', 'f.qcow2']);
    same(['map', '--output=json', 'file:f.qcow2']);
    same(['measure', '-O', 'qcow2', 'file:f.qcow2']);
    same(['info', '--backing-chain', 'sub/t.qcow2']);
    same(['info', '--output=json', '--backing-chain', 'sub/t.qcow2']);
  });

  it('write `file:` names as the file they name', (t) => {
    if (!requireQemu(t)) return;
    same(['create', '-f', 'raw', 'file:c.raw', '1M']);
    assert.ok(existsSync(at('c.raw')) && !existsSync(at('file:c.raw')));
    same(['convert', '-O', 'raw', 'f.qcow2', 'file:v.raw']);
    assert.ok(existsSync(at('v.raw')));
    same(['resize', 'file:c.raw', '2M']);
  });

  it('refuse unknown protocols before printing or creating anything', (t) => {
    if (!requireQemu(t)) return;
    for (const name of ['foo:bar', 'a.b:c', 'FOO:bar']) {
      same(['info', name]);
      same(['create', '-f', 'raw', name, '1M']);
      same(['convert', '-O', 'raw', 'f.qcow2', name]);
      same(['dd', 'if=f.qcow2', `of=${name}`]);
      assert.equal(existsSync(at(name)), false, name);
    }
    // A `/` before the colon makes it a path; an empty prefix is a protocol too.
    same(['info', './foo:bar']);
    same(['info', ':x']);
    same(['create', '-f', 'raw', ':x', '1M']);
  });

  it('refuse empty names as qemu-img does, leaving nothing behind', (t) => {
    if (!requireQemu(t)) return;
    for (const name of ['file:', 'host_device:']) same(['info', name]);
    for (const name of ['file:', '']) {
      same(['create', '-f', 'raw', name, '1M']);
      same(['create', '-f', 'qcow2', name, '1M']);
      same(['convert', '-O', 'raw', 'f.qcow2', name]);
    }
    assert.deepEqual(readdirSync(cwd).filter((n) => n.includes('.vdisk-')), []);
  });

  it('want a device behind `host_device:` and `host_cdrom:`', (t) => {
    if (!requireQemu(t)) return;
    same(['info', `host_device:${at('f.qcow2')}`]);
    same(['info', `host_cdrom:${at('f.qcow2')}`]);
    same(['info', 'host_device:/dev/null']);
  });

  it('open `null-co://` and `null-aio://` as qemu-img does, and nothing else of theirs', (t) => {
    if (!requireQemu(t)) return;
    same(['info', 'null-co://']);
    same(['info', '--output=json', 'null-aio://']);
    same(['info', 'null-co://x']);
    same(['create', '-f', 'qcow2', 'null-co://', '1M']);
    same(['convert', '-O', 'raw', 'f.qcow2', 'null-co://']);
    same(['convert', '-n', '-O', 'raw', 'f.qcow2', 'null-co://']);
  });
});
