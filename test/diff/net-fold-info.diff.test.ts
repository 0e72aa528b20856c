/**
 * `info` of images over HTTP against qemu-img of the same URLs (nginx):
 * qemu's curl driver has no get_info, so a raw file over HTTP shows no
 * dirty flag (human or JSON) while a qcow2 over HTTP, whose format driver
 * has one, shows it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { NGINX_BIN, requireNginx, startNginx, type Nginx } from '../helpers/net-http-nginx.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-net-fold-info-');
const www = join(dir.path, 'www');
let nginx: Nginx | undefined;

before(async () => {
  if (!hasQemu || !existsSync(NGINX_BIN)) return;
  mkdirSync(www);
  mkdirSync(join(dir.path, 'nginx'));
  qemuImgOk(['create', '-q', '-f', 'qcow2', join(www, 'd.qcow2'), '4M']);
  qemuIo(join(www, 'd.qcow2'), ['write -P 0x5a 1M 64k'], 'qcow2');
  qemuImgOk(['convert', '-O', 'raw', join(www, 'd.qcow2'), join(www, 'd.raw')]);
  nginx = await startNginx(www, join(dir.path, 'nginx'));
});
after(async () => {
  await nginx?.stop();
  dir.cleanup();
});

describe('net-fold: info over HTTP prints the dirty flag where qemu-img does', () => {
  for (const file of ['d.raw', 'd.qcow2']) {
    for (const output of ['human', 'json']) {
      it(`${file} (${output})`, (t) => {
        if (!requireQemu(t) || !requireNginx(t) || !nginx) return;
        const args = ['info', `--output=${output}`, nginx.url(file)];
        const theirs = qemuImg(args);
        if (/Unknown protocol/.test(theirs.stderr)) return void t.skip('qemu-img has no curl driver (Debian qemu-block-extra): URL comparison SKIPPED');
        assert.equal(theirs.status, 0, theirs.stderr);
        const ours = vdisk(args);
        assert.equal(ours.stderr, asVdisk(theirs.stderr));
        assert.equal(ours.stdout, theirs.stdout);
        assert.equal(ours.status, 0);
      });
    }
  }

  it('the JSON of a raw URL has no dirty-flag key, that of a qcow2 URL has it', (t) => {
    if (!requireQemu(t) || !requireNginx(t) || !nginx) return;
    const raw = JSON.parse(vdisk(['info', '--output=json', nginx.url('d.raw')]).stdout) as Record<string, unknown>;
    const qcow2 = JSON.parse(vdisk(['info', '--output=json', nginx.url('d.qcow2')]).stdout) as Record<string, unknown>;
    assert.equal('dirty-flag' in raw, false);
    assert.equal(qcow2['dirty-flag'], false);
  });
});
