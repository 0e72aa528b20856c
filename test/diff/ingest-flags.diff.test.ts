/**
 * The ingest policy on the command line. --allowed-formats,
 * --max-virtual-size, --max-inflated-size and --no-unwrap on info, check
 * and convert; any limit makes the trust mode `none` unless --trust says
 * otherwise, so a shared upload directory is safe by default.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-ingest-flags-');
after(() => dir.cleanup());
const cwd = dir.path;
let made = false;
function images(): void {
  if (made) return;
  made = true;
  writeFileSync(join(cwd, 'base.raw'), new Uint8Array(1 << 20));
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'plain.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', 'top.qcow2'], { cwd });
}

describe('ingest: policy flags on info, check and convert', () => {
  it('--allowed-formats refuses another format before it is parsed (info, check, convert)', (t) => {
    if (!requireQemu(t)) return;
    images();
    for (const argv of [['info'], ['check'], ['convert', '-O', 'raw']]) {
      const r = vdisk([...argv, '--allowed-formats=raw,vmdk', 'plain.qcow2', ...(argv[0] === 'convert' ? ['out.raw'] : [])], { cwd });
      assert.equal(r.status, 1, `${argv[0]}: ${r.stderr}`);
      assert.equal(r.stderr, "vdisk: Could not open 'plain.qcow2': Image format 'qcow2' of 'plain.qcow2' is not allowed (allowed: raw, vmdk)\n");
    }
    assert.equal(existsSync(join(cwd, 'out.raw')), false);
    assert.equal(vdisk(['info', '--allowed-formats=qcow2', 'plain.qcow2'], { cwd }).status, 0);
  });

  it('--max-virtual-size refuses a larger image', (t) => {
    if (!requireQemu(t)) return;
    images();
    const r = vdisk(['check', '--max-virtual-size=512K', 'plain.qcow2'], { cwd });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Virtual size 1048576 of 'plain\.qcow2' is above 524288 bytes/);
    assert.equal(vdisk(['check', '--max-virtual-size=1M', 'plain.qcow2'], { cwd }).status, 0);
  });

  it('a limit makes the trust mode none: a backing file beside the upload is refused unless --trust says so', (t) => {
    if (!requireQemu(t)) return;
    images();
    const refused = vdisk(['convert', '--max-virtual-size=1G', '-O', 'raw', 'top.qcow2', 'top.raw'], { cwd });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /external references are disabled \(trust mode 'none'\)/);
    assert.equal(existsSync(join(cwd, 'top.raw')), false);
    const allowed = vdisk(['convert', '--max-virtual-size=1G', '--untrusted', '-O', 'raw', 'top.qcow2', 'top.raw'], { cwd });
    assert.equal(allowed.status, 0, allowed.stderr);
  });

  it('bad values are refused', (t) => {
    if (!requireQemu(t)) return;
    images();
    assert.match(vdisk(['info', '--allowed-formats=', 'plain.qcow2'], { cwd }).stderr, /Invalid format list/);
    assert.match(vdisk(['info', '--max-inflated-size=lots', 'plain.qcow2'], { cwd }).stderr, /Invalid inflated size limit specified/);
  });

  it('the help lists inspect and the ingest options', () => {
    const r = vdisk(['--help']);
    assert.match(r.stdout, /^ {2}inspect \[--output=ofmt\]/m);
    assert.match(r.stdout, /'--no-unwrap'/);
  });
});
