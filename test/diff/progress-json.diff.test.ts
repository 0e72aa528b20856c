/**
 * `--progress=json` (vdisk's, beside qemu-img's `-p`): one JSON object per
 * stderr line ending at a single 100% line; stdout, exit status and the
 * images written are what qemu-img gives without `-p`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { damageQcow2 } from '../helpers/qcow2-damage.js';
import { check, type CheckPhase } from '../../src/jobs/check.js';
import type { JobProgress } from '../../src/core/progress.js';
import { qemuImg, qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';
import { hasQemu, hasQemuIo } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

const KEYS = ['phase', 'done', 'total', 'percent', 'bytesPerSecond', 'eta'];

/** Parses every stderr line; checks the keys, the types and the single final 100%. */
function jsonLines(stderr: string, phase: string): Record<string, unknown>[] {
  assert.ok(stderr.endsWith('\n'), `stderr: ${JSON.stringify(stderr)}`);
  const lines = stderr.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length >= 2);
  for (const l of lines) {
    assert.deepEqual(Object.keys(l), KEYS);
    assert.equal(l['phase'], phase);
    assert.ok(typeof l['percent'] === 'number' && typeof l['bytesPerSecond'] === 'number' && typeof l['done'] === 'number');
    assert.ok(l['eta'] === null || typeof l['eta'] === 'number');
  }
  assert.equal(lines.filter((l) => l['percent'] === 100).length, 1);
  assert.equal(lines.at(-1)?.['percent'], 100);
  return lines;
}

describe('--progress=json', () => {
  before(() => {
    if (!hasQemu || !hasQemuIo) return;
    qemuImgOk(['create', '-q', '-f', 'raw', p('src.raw'), '6M']);
    qemuIo(p('src.raw'), ['write -P 7 0 2M', 'write -P 9 4M 1M'], 'raw');
  });

  it('convert: JSON lines on stderr, nothing on stdout, the same image as qemu-img', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['convert', '--progress=json', '-O', 'qcow2', 'src.raw', 'v.qcow2'], { cwd: dir.path });
    const theirs = qemuImg(['convert', '-O', 'qcow2', 'src.raw', 'q.qcow2'], { cwd: dir.path });
    assert.equal(ours.status, theirs.status, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout);
    const lines = jsonLines(ours.stderr, 'copy');
    assert.equal(lines.at(-1)?.['total'], 6 * 1024 * 1024);
    assert.equal(lines.at(-1)?.['done'], 6 * 1024 * 1024);
    assert.equal(qemuImg(['compare', 'v.qcow2', 'q.qcow2'], { cwd: dir.path }).status, 0);
  });

  it('-q silences the -p line but not --progress=json', (t) => {
    if (!requireQemu(t)) return;
    const ours = vdisk(['convert', '-q', '--progress=json', '-O', 'raw', 'src.raw', 'v2.raw'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, '');
    jsonLines(ours.stderr, 'copy');
    const bar = vdisk(['convert', '-q', '-p', '-O', 'raw', 'src.raw', 'v3.raw'], { cwd: dir.path });
    assert.deepEqual([bar.status, bar.stdout, bar.stderr], [0, '', '']);
  });

  it('compare, commit, rebase and amend print what qemu-img prints without -p', (t) => {
    if (!requireQemu(t)) return;
    for (const pre of ['v', 'q']) {
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'src.raw', '-F', 'raw', p(`${pre}-top.qcow2`)]);
      qemuIo(p(`${pre}-top.qcow2`), ['write -P 3 1M 1M'], 'qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'src.raw', '-F', 'raw', p(`${pre}-other.qcow2`)]);
    }
    const cases: [string[], string][] = [
      // a difference ends compare early: its 100% line keeps the done it had
      [['compare', 'src.raw', '@-top.qcow2'], 'compare'],
      [['rebase', '-b', '@-other.qcow2', '-F', 'qcow2', '@-top.qcow2'], 'rebase'],
      [['amend', '-o', 'compat=0.10', '@-top.qcow2'], 'amend'],
      [['commit', '@-top.qcow2'], 'commit'],
    ];
    for (const [args, phase] of cases) {
      const ours = vdisk([args[0] as string, '--progress=json', ...args.slice(1).map((a) => a.replace('@', 'v'))], { cwd: dir.path });
      const theirs = qemuImg(args.map((a) => a.replace('@', 'q')), { cwd: dir.path });
      assert.equal(ours.status, theirs.status, `${args.join(' ')}: ${ours.stderr}`);
      assert.equal(ours.stdout, theirs.stdout, args.join(' '));
      jsonLines(ours.stderr, phase);
    }
    assert.equal(qemuImg(['compare', 'v-other.qcow2', 'q-other.qcow2'], { cwd: dir.path }).status, 0);
  });

  it('refuses another --progress= value; the last of -p and --progress=json wins', (t) => {
    if (!requireQemu(t)) return;
    const bad = vdisk(['convert', '--progress=bar', '-O', 'raw', 'src.raw', 'v4.raw'], { cwd: dir.path });
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, 'vdisk: --progress must be used with no argument or json as argument.\n');
    const ours = vdisk(['convert', '--progress=json', '-p', '-O', 'raw', 'src.raw', 'v5.raw'], { cwd: dir.path });
    const theirs = qemuImg(['convert', '-p', '-O', 'raw', 'src.raw', 'q5.raw'], { cwd: dir.path });
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stderr, '');
    assert.ok(ours.stdout.startsWith('    (0.00/100%)\r') && ours.stdout.endsWith('    (100.00/100%)\r\n'), JSON.stringify(ours.stdout));
    assert.equal(theirs.status, 0);
  });

  it('check reports its second pass after a repair as the recheck phase, and one 100% event', async (t) => {
    if (!requireQemu(t)) return;
    qemuImgOk(['create', '-q', '-f', 'qcow2', p('leak.qcow2'), '1M']);
    qemuIo(p('leak.qcow2'), ['write -P 1 0 128k'], 'qcow2');
    damageQcow2(p('leak.qcow2'), 'leak');
    const seen: JobProgress<CheckPhase>[] = [];
    const report = await check(p('leak.qcow2'), { repair: 'leaks', onProgress: (e) => seen.push(e) });
    assert.equal(report.leaksFixed, 1);
    assert.equal(report.doubleChecked, true);
    assert.deepEqual([...new Set(seen.map((e) => e.phase))], ['check', 'recheck']);
    assert.equal(seen.filter((e) => e.percent === 100).length, 1);
    assert.deepEqual([seen.at(-1)?.phase, seen.at(-1)?.percent], ['recheck', 100]);
  });
});
