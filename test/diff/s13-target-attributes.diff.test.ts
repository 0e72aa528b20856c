/**
 * A target that exists keeps its permissions and owner. qemu-img rewrites
 * it in place; vdisk writes a new file and renames it over the old one, which
 * gave the image the process's defaults (0644, the running user): a 0600
 * image became world-readable, one owned by the hypervisor's user became
 * root's. Owners are compared only when the tests run as root. A target with
 * other names (hard links) is rewritten in place as qemu-img rewrites it: the
 * rename left its other names on the old image.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, linkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { qemuImg, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-s13-target-attributes-');
after(() => dir.cleanup());
const cwd = dir.path;
const root = process.getuid?.() === 0;

/** Mode bits and, as root, owner of `file`. */
function attributes(file: string): string {
  const st = statSync(join(cwd, file));
  return `${(st.mode & 0o7777).toString(8)}${root ? ` ${st.uid}:${st.gid}` : ''}`;
}

describe('a replaced target keeps its permissions and owner, as qemu-img keeps them', () => {
  it('convert, create and dd onto an existing file', (t) => {
    if (!requireQemu(t)) return;
    const lines: [string, number, string[]][] = [
      ['0600', 0o600, ['convert', '-O', 'qcow2', 's.qcow2', 'OUT']],
      ['0444', 0o444, ['convert', '-O', 'raw', 's.qcow2', 'OUT']],
      ['2750', 0o2750, ['create', '-f', 'qcow2', 'OUT', '1M']],
      ['0640', 0o640, ['dd', 'if=s.qcow2', 'of=OUT']],
    ];
    for (const [name, mode, args] of lines) {
      const results: string[] = [];
      for (const tool of ['qemu', 'vdisk'] as const) {
        qemuImgOk(['create', '-q', '-f', 'qcow2', 's.qcow2', '1M'], { cwd });
        qemuImgOk(['create', '-q', '-f', 'raw', 'OUT', '10M'], { cwd });
        // As root: an owner that is not the process's (nobody's ids).
        if (root) chownSync(join(cwd, 'OUT'), 65534, 65534);
        chmodSync(join(cwd, 'OUT'), mode);
        const r = tool === 'qemu' ? qemuImg(args, { cwd }) : vdisk(args, { cwd });
        assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
        results.push(attributes('OUT'));
      }
      assert.equal(results[1], results[0], `${name}: ${args.join(' ')}`);
    }
  });

  it('a target with other names is rewritten in place: every name sees the new image', (t) => {
    if (!requireQemu(t)) return;
    const lines: string[][] = [
      ['create', '-f', 'qcow2', 'OUT', '2M'],
      ['convert', '-O', 'qcow2', 's.qcow2', 'OUT'],
      ['convert', '-O', 'raw', 's.qcow2', 'OUT'],
      ['dd', 'if=s.qcow2', 'of=OUT'],
    ];
    for (const args of lines) {
      const results: string[] = [];
      for (const tool of ['qemu', 'vdisk'] as const) {
        rmSync(join(cwd, 'OTHER'), { force: true });
        qemuImgOk(['create', '-q', '-f', 'qcow2', 's.qcow2', '1M'], { cwd });
        qemuImgOk(['create', '-q', '-f', 'raw', 'OUT', '3M'], { cwd });
        linkSync(join(cwd, 'OUT'), join(cwd, 'OTHER'));
        const r = tool === 'qemu' ? qemuImg(args, { cwd }) : vdisk(args, { cwd });
        assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
        const st = statSync(join(cwd, 'OTHER'));
        results.push(`links ${st.nlink} size ${st.size}\n${qemuImgOk(['info', 'OTHER'], { cwd }).replace(/disk size: .*/, '')}`);
      }
      assert.equal(results[1], results[0], args.join(' '));
    }
  });
});

