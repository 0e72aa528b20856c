/**
 * convert --digest: the digest of the guest content computed while
 * copying equals `sha256sum` of `qemu-img convert -O raw` of the source,
 * for sources of every format, ordered and out-of-order copies, compressed
 * targets; `compare IMAGE sha256:HEX` checks an image against a digest.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { compare, convert } from '../../src/index.js';
import { vdisk } from '../helpers/cli.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-digest-');
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

const FORMATS: [string, string[]][] = [
  ['raw', []], ['qcow2', []], ['qcow2', ['-c']], ['vmdk', ['-o', 'subformat=streamOptimized']], ['vpc', []], ['vhdx', []],
  ['vdi', []], ['qed', []], ['qcow', []], ['parallels', []],
];

function sha(file: string, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(readFileSync(file)).digest('hex')}`;
}

let base: string | undefined;
function source(): string {
  if (base) return base;
  base = p('base.raw');
  qemuImgOk(['create', '-q', '-f', 'raw', base, '6M']);
  qemuIo(base, ['write -P 0x11 0 300k', 'write -P 0x22 4M 1M', 'write -P 0x33 6143k 1k'], 'raw');
  return base;
}

describe('convert --digest', () => {
  FORMATS.forEach(([format, extra], k) => {
    it(`from ${format}${extra.length ? ` (${extra.join(' ')})` : ''}: equals sha256sum of qemu-img's raw`, async (t) => {
      if (!requireQemu(t)) return;
      const src = p(`s${k}.${format}`);
      qemuImgOk(['convert', '-f', 'raw', '-O', format, ...extra, source(), src]);
      qemuImgOk(['convert', '-O', 'raw', src, p(`r${k}.raw`)]);
      const expected = sha(p(`r${k}.raw`));
      const r = await convert(src, p(`o${k}.qcow2`), { targetFormat: 'qcow2', digest: 'sha256' });
      assert.equal(r.digest, expected);
      // Out of order into raw, and compressed, and through the CLI.
      const w = await convert(src, p(`o${k}.raw`), { targetFormat: 'raw', digest: 'sha256', outOfOrder: true, parallel: 16 });
      assert.equal(w.digest, expected);
      const cli = vdisk(['convert', '-c', '--digest=sha256', '-O', 'qcow2', src, p(`c${k}.qcow2`)]);
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, `${expected}\n`);
      assert.equal((await compare(src, expected)).identical, true);
    });
  });

  it('sha384 and sha512; the raw digest of a sparse image hashes its zeros', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', p('sparse.qcow2'), '64M']);
    qemuIo(p('sparse.qcow2'), ['write -P 9 33M 4k']);
    qemuImgOk(['convert', '-O', 'raw', p('sparse.qcow2'), p('sparse.raw')]);
    for (const algorithm of ['sha384', 'sha512'] as const) {
      const r = await convert(p('sparse.qcow2'), p(`sp-${algorithm}.vpc`), { targetFormat: 'vpc', digest: algorithm });
      assert.equal(r.digest, sha(p('sparse.raw'), algorithm));
    }
  });

  it('compare IMAGE DIGEST: exit 0 when equal, 1 with the actual digest when not; refusals', (t) => {
    if (!requireQemu(t)) return;
    const src = source();
    const good = sha(src);
    assert.equal(vdisk(['compare', src, good]).stdout, 'Images are identical.\n');
    const bad = `sha256:${'0'.repeat(64)}`;
    const r = vdisk(['compare', bad, src]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, `Content mismatch: the image's content has ${good}\n`);
    const both = vdisk(['compare', good, bad]);
    assert.equal(both.status, 1);
    assert.match(both.stderr, /At most one side of a comparison can be a digest/);
    for (const [args, msg] of [
      [['-C'], /digest cannot be used with copyOffload|Cannot enable copy offloading/],
      [['-B', src, '-F', 'raw'], /digest cannot be used with a backing file/],
      [['--digest=md4'], /Unknown digest 'md4'/],
    ] as const) {
      const c = vdisk(['convert', '--digest=sha256', ...args, '-O', 'qcow2', src, p('refused.qcow2')]);
      assert.equal(c.status, 1, args.join(' '));
      assert.match(c.stderr, msg);
    }
  });
});
