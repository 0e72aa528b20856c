/**
 * Image names given on the command line as `json:{...}`
 * or `--image-opts` strings, with the drivers vdisk has (file, raw, qcow2,
 * vmdk, vpc, vhdx, vdi, null-co) and their options: every command that
 * takes them, run by qemu-img and vdisk on identical copies, must print
 * the same, exit the same and leave the same images.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { run } from '../../src/cli/main.js';
import { asVdisk } from '../helpers/cli.js';
import { hasQemu, hasQemuIo, qemuImg, qemuImgOk, qemuIo, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const seed = join(dir.path, 'seed');

/**
 * Runs the CLI in this process (the same code as the bin; spawning a node
 * process per case would make this file slow), in `cwd`.
 */
async function vdiskHere(args: readonly string[], cwd: string): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const back = process.cwd();
  process.chdir(cwd);
  try {
    const status = await run(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { status, stdout, stderr };
  } finally {
    process.chdir(back);
  }
}

const timing = (s: string): string => s.replace(/Run completed in [0-9.]+ seconds/, 'Run completed in T seconds');

/**
 * Runs `args` with both tools and expects the same exit status, output
 * and messages. Commands that change images (`changes`) run on separate
 * copies of the seed images, and every image left behind must then read
 * and describe the same.
 */
async function same(args: readonly string[], changes = false): Promise<void> {
  const what = args.join(' ');
  const qdir = changes ? join(dir.path, 'q') : seed;
  const vdir = changes ? join(dir.path, 'v') : seed;
  if (changes) {
    for (const d of [qdir, vdir]) {
      rmSync(d, { recursive: true, force: true });
      cpSync(seed, d, { recursive: true });
    }
  }
  const q = qemuImg(args, { cwd: qdir });
  const v = await vdiskHere(args, vdir);
  assert.equal(v.status, q.status, `${what}\nqemu: ${q.stderr}\nvdisk: ${v.stderr}`);
  assert.equal(timing(v.stdout), timing(q.stdout), what);
  assert.equal(v.stderr, asVdisk(q.stderr), what);
  if (!changes) return;
  const unchanged = (d: string, f: string): boolean => existsSync(join(seed, f)) && readFileSync(join(d, f)).equals(readFileSync(join(seed, f)));
  for (const f of readdirSync(qdir)) {
    if (unchanged(qdir, f) && existsSync(join(vdir, f)) && unchanged(vdir, f)) continue;
    const info = (d: string): unknown => {
      const r = qemuImg(['info', '-U', '--output=json', f], { cwd: d });
      return r.status === 0 ? { ...(JSON.parse(r.stdout) as object), 'actual-size': 0 } : r.stderr;
    };
    assert.deepEqual(info(vdir), info(qdir), `${what}: ${f}`);
    assert.equal(qemuImg(['compare', '-U', join(qdir, f), join(vdir, f)]).status, 0, `${what}: content of ${f}`);
  }
}

describe('json: and --image-opts names', { skip: hasQemu && hasQemuIo ? false : 'qemu-img/qemu-io not installed' }, () => {
  before(() => {
    mkdirSync(seed);
    const c = { cwd: seed };
    qemuImgOk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], c);
    qemuIo(join(seed, 'r.raw'), ['write -P 7 0 64k', 'write -P 8 512k 4k'], 'raw');
    qemuImgOk(['create', '-q', '-f', 'qcow2', 'x.qcow2', '1M'], c);
    qemuIo(join(seed, 'x.qcow2'), ['write -P 9 64k 64k'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'r.raw', '-F', 'raw', 'ov.qcow2'], c);
    qemuIo(join(seed, 'ov.qcow2'), ['write -P 5 128k 64k'], 'qcow2');
    qemuImgOk(['create', '-q', '-f', 'raw', 'o.raw', '1M'], c);
    qemuImgOk(['create', '-q', '-f', 'vpc', 'd.vhd', '1M'], c);
  });

  it('info: names, formats and drivers as qemu-img shows them', async () => {
    for (const name of [
      'json:{"driver":"qcow2","file":{"driver":"file","filename":"x.qcow2"}}',
      'json:{"file":{"filename":"x.qcow2"}}',
      'json:{"driver":"raw","offset":512,"file.filename":"r.raw"}',
      "json:{'driver':'raw','file.filename':'r.raw','size':1024}",
      'json:{"driver":"null-co","size":1048576,"read-zeroes":true}',
      'json:{"driver":"file","filename":"x.qcow2"}',
      'json:{"driver":"qcow2","file.filename":"ov.qcow2","backing":null}',
      'json:{"driver":"qcow2","file.filename":"x.qcow2","encrypt.key-secret":"s0"}',
      'json:{"driver":"vpc","file.filename":"d.vhd","force_size_calc":"current_size"}',
    ]) {
      await same(['info', name]);
      await same(['info', '--output=json', name]);
    }
    await same(['info', '--image-opts', 'driver=raw,offset=512,size=1024,file.filename=r.raw']);
    await same(['info', '--image-opts', 'driver=null-co']);
    await same(['info', '--image-opts', 'driver=null-co,size=1000']);
    await same(['info', '--backing-chain', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2']);
    await same(['info', '-f', 'qcow2', 'json:{"file.filename":"x.qcow2"}']);
  });

  it('refuses what qemu-img refuses, with its messages', async () => {
    const bad = [
      'json:{',
      'json:',
      'json:[1]',
      'json:{"a":1}x',
      'json:{"a":1,"a":2}',
      'json:{a:1}',
      'json:{"a":"\\x"}',
      'json:{"a":@}',
      'json:{"driver":"qcow2"}',
      'json:{"driver":"bogus","file.filename":"x.qcow2"}',
      'json:{"driver":"qcow2","file":"x.qcow2"}',
      'json:{"driver":"qcow2","file":{"driver":"file","filename":"x.qcow2","foo":1}}',
      'json:{"driver":"qcow2","file.filename":"x.qcow2","l2-cache-size":"abc"}',
      'json:{"driver":"qcow2","file.filename":"x.qcow2","l2-cache-size":[1]}',
      'json:{"driver":"raw","file":{}}',
      'json:{"a":1}',
    ];
    for (const name of bad) await same(['info', name]);
    const opts = [
      'filename=r.raw',
      'driver=qcow2,filename=x.qcow2',
      'x.qcow2',
      ',driver=raw,file.filename=r.raw',
      'id=1x,driver=raw,file.filename=r.raw',
      'driver=raw,file.filename=r.raw,read-only',
      'driver=raw,file.filename=r.raw,node-name=#x',
      'driver=raw,file.filename=r.raw,node-name=a,file.node-name=a',
      'driver=raw,file.filename=r.raw,discard=x',
      'driver=raw,file.filename=r.raw,detect-zeroes=unmap',
      'driver=raw,file.filename=r.raw,file.locking=x',
      'driver=raw,file.filename=r.raw,file.aio=native',
      'driver=raw,file.filename=r.raw,size=3',
      'driver=raw,file.filename=r.raw,offset=2000000',
      'driver=raw,file.filename=r.raw,size=2000000',
      'driver=qcow2,file.filename=x.qcow2,read-only=x,file.foo=1',
      'driver=qcow2,file.filename=r.raw,foo=1',
      'driver=qcow2,file.filename=x.qcow2,l2-cache-entry-size=131072',
      'driver=qcow2,file.filename=x.qcow2,cache-size=1M,l2-cache-size=2M',
      'driver=qcow2,file.filename=x.qcow2,overlap-check=all,overlap-check.template=none',
      'driver=qcow2,file.filename=x.qcow2,cache-clean-interval=-1',
      'driver=qcow2,file.filename=x.qcow2,refcount-cache-size=1E',
      'driver=qcow2,file.filename=x.qcow2,l2-cache-size=16E',
      'driver=qcow2,file.filename=x.qcow2,encrypt.format=luks',
      'driver=qcow2,file.filename=x.qcow2,discard-no-unref=on',
      'driver=vpc,file.filename=d.vhd,force_size_calc=bad',
      'driver=null-co,size=1M,foo=1',
    ];
    for (const o of opts) await same(['info', '--image-opts', o]);
    await same(['info', '-U', '--image-opts', 'driver=raw,file.filename=r.raw,force-share=off']);
    await same(['info', '--image-opts', '-f', 'raw', 'driver=raw,file.filename=r.raw']);
    await same(['info', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2,backing=null']);
  });

  it('runtime options are honoured where they mean something', async () => {
    await same(['map', '--output=json', '--image-opts', 'driver=raw,file.filename=r.raw,offset=4096,size=8192']);
    await same(['map', '--image-opts', 'driver=raw,file.filename=r.raw,offset=4096']);
    await same(['map', '--output=json', 'json:{"driver":"qcow2","file.filename":"ov.qcow2","backing":null}']);
    await same(['map', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2,backing.file.filename=x.qcow2']);
    await same(['map', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2,backing=r.raw']);
    await same(['map', '--image-opts', 'driver=raw,file.filename=r.raw,backing.file.filename=x']);
    await same(['map', '--output=json', '--image-opts', 'driver=null-co,size=1M,read-zeroes=on']);
    // Without read-zeroes qemu's null driver says neither data nor zeros, directly and under raw.
    await same(['map', '--output=json', '--image-opts', 'driver=null-co,size=1M']);
    await same(['map', '--output=json', 'null-co://']);
    await same(['map', '--output=json', 'json:{"driver":"raw","file":{"driver":"null-aio","size":1048576}}']);
    await same(['map', 'json:{"driver":"raw","file":{"driver":"null-co","size":1048576,"read-zeroes":true}}']);
    await same(['compare', 'json:{"driver":"qcow2","file.filename":"ov.qcow2","backing":null}', 'r.raw']);
    await same(['compare', '--image-opts', 'driver=null-co,size=1M,read-zeroes=on', 'driver=raw,file.filename=o.raw']);
    await same(['check', '--output=json', 'json:{"driver":"qcow2","file.filename":"ov.qcow2","backing":null}']);
    await same(['measure', '-O', 'qcow2', '--image-opts', 'driver=null-co,size=1G']);
    await same(['measure', '-O', 'qcow2', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2']);
  });

  it('every command that takes --image-opts', async () => {
    await same(['convert', '-O', 'qcow2', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2', 'c.qcow2'], true);
    await same(['convert', '-O', 'raw', '--image-opts', 'driver=raw,file.filename=r.raw,offset=4096,size=8192', 'c.raw'], true);
    await same(['convert', '-O', 'raw', 'json:{"driver":"qcow2","file.filename":"ov.qcow2","backing":null}', 'c.raw'], true);
    await same(['convert', '-O', 'raw', 'json:{"driver":"null-co","size":65536}', 'n.raw'], true);
    await same(['convert', '-n', '--target-image-opts', 'x.qcow2', 'driver=raw,file.filename=o.raw'], true);
    await same(['convert', '-n', '-O', 'raw', 'x.qcow2', 'json:{"driver":"raw","file.filename":"o.raw"}'], true);
    await same(['convert', '--target-image-opts', '-O', 'raw', 'x.qcow2', 'driver=raw,file.filename=o.raw'], true);
    await same(['convert', '-O', 'raw', 'x.qcow2', 'json:{"driver":"raw","file.filename":"new.raw"}'], true);
    await same(['create', '-f', 'qcow2', 'json:{"driver":"file","filename":"c.qcow2"}', '1M'], true);
    await same(['resize', '--image-opts', 'driver=raw,file.filename=r.raw', '2M'], true);
    await same(['resize', '--image-opts', 'driver=raw,file.filename=r.raw,offset=4096', '2M'], true);
    await same(['resize', '--image-opts', 'driver=raw,file.filename=r.raw,read-only=on', '2M'], true);
    await same(['resize', '--image-opts', 'driver=raw,file.filename=r.raw,file.read-only=on', '2M'], true);
    await same(['resize', '--image-opts', 'driver=raw,file.filename=r.raw,force-share=on', '2M'], true);
    await same(['resize', 'json:{"driver":"qcow2","file.filename":"x.qcow2","l2-cache-size":"1M"}', '2M'], true);
    await same(['commit', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2'], true);
    await same(['rebase', '-u', '-b', 'x.qcow2', '-F', 'qcow2', '--image-opts', 'driver=qcow2,file.filename=ov.qcow2'], true);
    await same(['amend', '-o', 'lazy_refcounts=on', '--image-opts', 'driver=qcow2,file.filename=x.qcow2'], true);
    await same(['snapshot', '-l', '--image-opts', 'driver=qcow2,file.filename=x.qcow2']);
    await same(['bitmap', '--add', '--image-opts', 'driver=qcow2,file.filename=x.qcow2', 'b1'], true);
    await same(['dd', '--image-opts', 'if=driver=raw,file.filename=r.raw,offset=4096', 'of=d.raw', 'bs=4k', 'count=2'], true);
    await same(['bench', '-c', '4', '-w', '--image-opts', 'driver=null-co,size=1M']);
    await same(['check', '-r', 'all', '--image-opts', 'driver=qcow2,file.filename=x.qcow2'], true);
    await same(['compare', '--image-opts', 'driver=raw,file.filename=r.raw', 'driver=qcow2,file.filename=ov.qcow2']);
    await same(['compare', '--image-opts', '-f', 'raw', 'driver=raw,file.filename=r.raw', 'driver=qcow2,file.filename=ov.qcow2']);
  });
});
