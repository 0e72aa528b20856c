/**
 * Compares an image vdisk made or changed with the one qemu-img made from
 * the same command: `qemu-img info`, `map` (allocation and zero flags, not
 * host offsets), `check` (counts, not fragmentation or the file's end) and
 * guest content (`qemu-img compare`). map runs before anything reads guest
 * data: whether a file system reports preallocated space as data can
 * depend on what was read.
 */
import assert from 'node:assert/strict';

import { qemuImg, qemuImgOk } from './qemu.js';

type Json = Record<string, unknown>;

const at = (cwd: string | undefined): { cwd?: string } => (cwd === undefined ? {} : { cwd });

function info(file: string, cwd: string | undefined): Json {
  const d = JSON.parse(qemuImgOk(['info', '--output=json', file], at(cwd))) as Json;
  for (const k of ['filename', 'actual-size', 'backing-filename', 'full-backing-filename', 'dirty-flag']) delete d[k];
  for (const sn of (d['snapshots'] as Json[] | undefined) ?? []) {
    delete sn['date-sec'];
    delete sn['date-nsec'];
  }
  const data = (d['format-specific'] as { data?: Json } | undefined)?.data;
  if (data && 'data-file' in data) data['data-file'] = '(name)';
  return d;
}

/** map entries without host offsets, neighbours with the same flags merged. */
function map(file: string, format: string, cwd: string | undefined): Json[] {
  const out: Json[] = [];
  for (const e of JSON.parse(qemuImgOk(['map', '-f', format, '--output=json', file], at(cwd))) as Json[]) {
    delete e['offset'];
    const last = out[out.length - 1];
    const same = last && ['depth', 'present', 'zero', 'data', 'compressed'].every((k) => last[k] === e[k]);
    if (last && same && (last['start'] as number) + (last['length'] as number) === e['start']) last['length'] = (last['length'] as number) + (e['length'] as number);
    else out.push(e);
  }
  return out;
}

function check(file: string, cwd: string | undefined): Json {
  const r = qemuImg(['check', '--output=json', file], at(cwd));
  const d = JSON.parse(r.stdout || '{}') as Json;
  for (const k of ['filename', 'image-end-offset', 'fragmented-clusters']) delete d[k];
  return { ...d, exit: r.status };
}

/** Asserts that `v` (vdisk's) reads and is laid out as `q` (qemu-img's). */
export function assertSameImage(q: string, v: string, label: string, options: { format?: string; cwd?: string } = {}): void {
  const format = options.format ?? 'qcow2';
  const { cwd } = options;
  assert.deepEqual(info(v, cwd), info(q, cwd), `${label}: qemu-img info`);
  assert.deepEqual(map(v, format, cwd), map(q, format, cwd), `${label}: qemu-img map`);
  if (format === 'qcow2') assert.deepEqual(check(v, cwd), check(q, cwd), `${label}: qemu-img check`);
  const cmp = qemuImg(['compare', '-f', format, '-F', format, q, v], at(cwd));
  assert.equal(cmp.status, 0, `${label}: qemu-img compare: ${cmp.stdout}${cmp.stderr}`);
}
