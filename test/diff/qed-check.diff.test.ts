/**
 * `check` and `check -r` of QED images as qemu-img 7.2 does them (issue
 * 19): invalid L1/L2 entries are corruptions that both `-r leaks` and
 * `-r all` clear, clusters used twice are corruptions no repair fixes,
 * unused clusters are leaks that are only counted. The need-check flag a
 * crash leaves is never reported by info, a writable open repairs the
 * image first and clears it (qemu's timer clears it after every writable
 * open, whatever the check finds). Each case runs on a copy per tool and
 * compares outputs, exit codes and the files afterwards.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { hasQemu, qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-qed-check-');
after(() => dir.cleanup());
const cwd = dir.path;
const p = (name: string): string => `${cwd}/${name}`;

/** Damage done to a copy of the base image: [offset, u64 value] pairs, or a new length. */
interface Damage {
  readonly edits?: readonly (readonly [number, bigint])[];
  readonly length?: number;
}

let l2 = 0;
let fileLength = 0;
const FLAG: readonly [number, bigint] = [16, 2n];

/** The damages, built once the base image's L2 table is known. */
function damages(): Record<string, Damage> {
  return {
    'need-check flag': { edits: [FLAG] },
    'flagged, with L2 entries unaligned and past the end': { edits: [FLAG, [l2 + 8, 0x60001n], [l2 + 16 * 8, 0x9990000n]] },
    'L2 entries unaligned and past the end': { edits: [[l2 + 8, 0x60001n], [l2 + 16 * 8, 0x9990000n]] },
    'a cluster used twice': { edits: [[l2 + 48 * 8, 0x50000n]] },
    'flagged, with a cluster used twice': { edits: [FLAG, [l2 + 48 * 8, 0x50000n]] },
    'leaked clusters': { length: fileLength + 3 * 65536 },
    'L1 entries unaligned and past the end': { edits: [[65536 + 8, 0x10n], [65536 + 16, 0x8000000n]] },
    'a file cut inside its last cluster': { length: fileLength - 1000 },
  };
}

function damaged(name: string, d: Damage): void {
  copyFileSync(p('base.qed'), p(name));
  if (d.length !== undefined) truncateSync(p(name), d.length);
  if (!d.edits) return;
  const b = readFileSync(p(name));
  for (const [at, value] of d.edits) b.writeBigUInt64LE(value, at);
  writeFileSync(p(name), b);
}

/** Runs `args` (`{}`: the image; else it goes last) on a damaged copy per tool; compares outputs, exit codes and the files afterwards. */
function sameAfter(what: string, d: Damage, args: readonly string[]): void {
  damaged('v.qed', d);
  damaged('q.qed', d);
  const withImage = (name: string): string[] => (args.includes('{}') ? args.map((a) => (a === '{}' ? name : a)) : [...args, name]);
  const ours = vdisk(withImage('v.qed'), { cwd });
  const theirs = qemuImg(withImage('q.qed'), { cwd });
  const label = `${args.join(' ')} (${what})`;
  assert.equal(ours.stdout.replaceAll('v.qed', 'q.qed'), theirs.stdout, `stdout of ${label}`);
  assert.equal(ours.stderr.replaceAll('v.qed', 'q.qed'), theirs.stderr.replaceAll('qemu-img: ', 'vdisk: '), `stderr of ${label}`);
  assert.equal(ours.status, theirs.status, `exit status of ${label}`);
  assert.ok(readFileSync(p('v.qed')).equals(readFileSync(p('q.qed'))), `file after ${label}`);
}

describe('qed check and repair equal qemu-img', () => {
  before(() => {
    if (!hasQemu) return;
    qemuImgOk(['create', '-q', '-f', 'qed', 'base.qed', '8M'], { cwd });
    qemuIo(p('base.qed'), ['write -P 0x11 0 192k', 'write -P 0x22 1M 128k', 'write -P 0x33 3M 128k', 'write -P 0x44 5M 128k', 'write -z 7M 64k'], 'qed');
    const b = readFileSync(p('base.qed'));
    l2 = Number(b.readBigUInt64LE(65536));
    fileLength = b.length;
  });

  it('the base image: data clusters right after the first L2 table', (t) => {
    if (!requireQemu(t)) return;
    // the damages below point entries at 0x50000 (the first data cluster) and expect 64 KiB clusters
    assert.equal(Number(readFileSync(p('base.qed')).readBigUInt64LE(l2)), 0x50000);
  });

  const COMMANDS: readonly (readonly string[])[] = [['check'], ['check', '-r', 'leaks'], ['check', '-r', 'all'], ['check', '--output=json'], ['info'], ['resize', '-f', 'qed', '{}', '+64k']];
  for (const what of ['need-check flag', 'flagged, with L2 entries unaligned and past the end', 'L2 entries unaligned and past the end', 'a cluster used twice', 'flagged, with a cluster used twice', 'leaked clusters', 'L1 entries unaligned and past the end', 'a file cut inside its last cluster']) {
    it(`${what}: check, check -r, info and a writable open as qemu-img`, (t) => {
      if (!requireQemu(t)) return;
      const d = damages()[what] as Damage;
      for (const args of COMMANDS) sameAfter(what, d, args);
    });
  }
});
