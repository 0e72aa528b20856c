/**
 * QEMU's parallels sample images (iotests 076 and parallels-read-bitmap):
 * both signatures and the format extension read as qemu-img reads them:
 * info (human and JSON), check, map and the guest bytes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { assertSame, hasBzip2, poke, SAMPLES, sample, u32 } from './parallels-kit.js';


const dir = tmpDir('vdisk-parallels-samples-');
after(() => dir.cleanup());

/** A directory holding sample `s` as `img`. */
function withSample(s: string): string {
  const d = join(dir.path, `d-${s}`);
  mkdirSync(d, { recursive: true });
  sample(s, d, 'img');
  return d;
}

describe('parallels sample images read as qemu-img reads them', { skip: hasBzip2 ? false : 'needs bzip2' }, () => {
  for (const s of SAMPLES) {
    it(`${s}: info, info --output=json, check, map and map --output=json`, (t) => {
      if (!requireQemu(t)) return;
      const d = withSample(s);
      for (const args of [['info', 'img'], ['info', '--output=json', 'img'], ['check', 'img'], ['check', '--output=json', 'img'], ['map', 'img'], ['map', '--output=json', 'img']]) {
        assertSame(d, args);
      }
    });

    it(`${s}: guest bytes equal qemu-img's`, (t) => {
      if (!requireQemu(t)) return;
      const d = withSample(s);
      if (s === 'parallels-with-bitmap') {
        // 64 GiB with no cluster allocated: compared with an empty raw image of that size
        qemuImgOk(['create', '-q', '-f', 'raw', join(d, 'zero.raw'), '64G']);
        assert.equal(qemuImgOk(['compare', join(d, 'img'), join(d, 'zero.raw')]), 'Images are identical.\n');
        const r = vdisk(['compare', join(d, 'img'), join(d, 'zero.raw')]);
        assert.equal(r.stdout, 'Images are identical.\n', r.stderr);
        return;
      }
      qemuImgOk(['convert', '-O', 'raw', join(d, 'img'), join(d, 'q.raw')]);
      const r = vdisk(['convert', '-O', 'raw', join(d, 'img'), join(d, 'v.raw')]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(readFileSync(join(d, 'v.raw')).equals(readFileSync(join(d, 'q.raw'))));
    });
  }

  it('writes into v1 (sectors, also with data_off 0) and v2 samples place clusters as qemu-img does', (t) => {
    if (!requireQemu(t)) return;
    const d = join(dir.path, 'writes');
    mkdirSync(d);
    sample('parallels-v1', d, 'v1.hds');
    sample('parallels-v1', d, 'v1z.hds');
    poke(join(d, 'v1z.hds'), 48, u32(0));
    sample('parallels-v2', d, 'v2.hds');
    qemuImgOk(['create', '-q', '-f', 'raw', join(d, 'd.raw'), '2M']);
    qemuIo(join(d, 'd.raw'), ['write -P 0x5a 300k 700k', 'write -P 0x6b 1800k 4k'], 'raw');
    for (const f of ['v1.hds', 'v1z.hds', 'v2.hds']) assertSame(d, ['convert', '-n', '-O', 'parallels', 'd.raw', f]);
  });
});
