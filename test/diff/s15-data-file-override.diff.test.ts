/**
 * A qcow2 data file given in the open options (`--image-opts …,data-file.filename=F`,
 * `json:{…,"data-file":{…}}`) instead of the one the image records: read and
 * written there, locked as the image's data, refused as qemu-img 7.2 refuses
 * it (a node reference, a file that does not exist, options the file node
 * does not take, an image without an external data file), and not opened at
 * all by `info`. vdisk refused every such open.
 */
import { after, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { assertCasesMatchQemu } from '../helpers/case-table.js';
import { qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s15-data-file-');
after(() => dir.cleanup());
const cwd = dir.path;
const at = (name: string): string => join(cwd, name);

/** qemu-io in the directory: qemu opens a data file's recorded name relative to its own working directory. */
const qemuIo = (image: string, command: string, format: string): void => void execFileSync('qemu-io', ['-f', format, '-c', command, image], { cwd, stdio: 'ignore' });

function fresh(): void {
  for (const f of ['plain.qcow2', 'ext.qcow2', 'd.raw', 'd2.raw', 'src.raw', 'out.raw', 'out.qcow2']) rmSync(at(f), { force: true });
  qemuImgOk(['create', '-q', '-f', 'qcow2', 'plain.qcow2', '1M'], { cwd });
  qemuImgOk(['create', '-q', '-f', 'qcow2', '-o', 'data_file=d.raw', 'ext.qcow2', '1M'], { cwd });
  qemuIo('ext.qcow2', 'write -P 7 0 64k', 'qcow2');
  copyFileSync(at('d.raw'), at('d2.raw'));
  qemuIo('d2.raw', 'write -P 9 0 4k', 'raw');
  qemuImgOk(['create', '-q', '-f', 'raw', 'src.raw', '1M'], { cwd });
  qemuIo('src.raw', 'write -P 5 128k 64k', 'raw');
}

/** The bytes of each file and what qemu-img check says of the image: where a write went. */
function outcome(): string {
  const bytes = (f: string): string => (existsSync(at(f)) ? `${f} ${statSync(at(f)).size} ${readFileSync(at(f)).subarray(0, 256 * 1024).toString('hex').replace(/(00)+/g, '0')}` : `${f} -`);
  let check: string;
  try {
    check = execFileSync('qemu-img', ['check', 'ext.qcow2'], { cwd, encoding: 'utf8' });
  } catch (err) {
    check = String((err as { stdout?: string }).stdout);
  }
  return [bytes('d.raw'), bytes('d2.raw'), bytes('out.raw'), check].join('\n');
}

const OVERRIDE = 'driver=qcow2,file.filename=ext.qcow2,data-file.filename=d2.raw';

describe('a qcow2 data file given in the open options, as qemu-img', () => {
  it('reads, writes and refuses as qemu-img 7.2', (t) => {
    if (!requireQemu(t)) return;
    const opens: string[][] = [];
    for (const command of [['info'], ['check'], ['map'], ['map', '--output=json']]) {
      for (const image of ['ext', 'plain']) {
        for (const o of [
          'data-file=d2.raw',
          'data-file.filename=d2.raw',
          'data-file.driver=file,data-file.filename=d2.raw',
          'data-file.filename=nonexist.raw',
          'data-file.foo=bar',
          'data-file.filename=d2.raw,data-file.foo=bar',
          'data-file.driver=file',
          'data-file.filename=d2.raw,data-file.locking=off',
          'data-file.filename=d2.raw,data-file.read-only=on',
          'data-file=x,data-file.filename=d2.raw',
        ]) {
          opens.push([...command, '--image-opts', `driver=qcow2,file.filename=${image}.qcow2,${o}`]);
        }
      }
    }
    assertCasesMatchQemu(
      [
        ...opens,
        ['info', 'json:{"driver":"qcow2","file":{"driver":"file","filename":"ext.qcow2"},"data-file":{"driver":"file","filename":"d2.raw"}}'],
        ['map', 'json:{"driver":"qcow2","file":{"driver":"file","filename":"ext.qcow2"},"data-file":{"driver":"file","filename":"d2.raw"}}'],
        ['convert', '-O', 'raw', '--image-opts', OVERRIDE, 'out.raw'],
        ['convert', '-O', 'raw', '--image-opts', `${OVERRIDE},data-file.read-only=on`, 'out.raw'],
        ['convert', '-O', 'raw', '--image-opts', 'driver=qcow2,file.filename=ext.qcow2,data-file.filename=nonexist.raw', 'out.raw'],
        ['convert', '-n', 'src.raw', '--target-image-opts', OVERRIDE],
        ['convert', '-n', 'src.raw', '--target-image-opts', `${OVERRIDE},data-file.read-only=on`],
        ['compare', '--image-opts', OVERRIDE, 'd2.raw'],
        ['compare', '--image-opts', OVERRIDE, 'd.raw'],
        ['check', '-r', 'all', '--image-opts', OVERRIDE],
        ['resize', '--image-opts', OVERRIDE, '2M'],
        ['resize', '--shrink', '--image-opts', OVERRIDE, '512k'],
        ['amend', '-o', 'lazy_refcounts=on', '--image-opts', OVERRIDE],
        ['bitmap', '--add', '--image-opts', OVERRIDE, 'b0'],
        ['measure', '-O', 'qcow2', '--image-opts', OVERRIDE],
        ['commit', '--image-opts', OVERRIDE],
      ],
      { cwd, fresh, outcome },
    );
  });
});
