/**
 * The sweep's own machinery, without qemu: the case list is deterministic
 * with unique ids and covers every command and format, the sample keeps
 * that coverage, and the normalisation hides exactly what it should.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { coverageSample, generateCases } from './cases.js';
import { FIXTURES } from './fixtures.js';
import { mapText, normalizeInfo, normalizeMap, normalizeText, withoutHostHoles } from './normalize.js';
import { ALL_FORMATS } from './options.js';

describe('sweep cases', () => {
  const cases = generateCases();

  it('are several thousand, with unique ids, the same on every call', () => {
    assert.ok(cases.length > 5000, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.id)).size, cases.length);
    assert.deepEqual(generateCases().map((c) => c.id), cases.map((c) => c.id));
  });

  it('cover every command and every format, and so does the sample', () => {
    const commands = ['create', 'convert', 'info', 'check', 'map', 'measure', 'compare', 'commit', 'rebase', 'resize', 'amend', 'snapshot', 'bitmap', 'dd', 'bench'];
    const sample = coverageSample(cases, 200);
    for (const list of [cases, sample]) {
      for (const cmd of commands) assert.ok(list.some((c) => c.command === cmd), `no ${cmd} case`);
      for (const fmt of ALL_FORMATS) assert.ok(list.some((c) => c.formats.includes(fmt)), `no ${fmt} case`);
    }
    assert.ok(sample.length <= 230, `${sample.length} sampled`);
  });

  it('only name fixtures that exist', () => {
    const names = new Set(FIXTURES.map((f) => f.name));
    for (const c of cases) for (const i of c.inputs) assert.ok(names.has(i), `${c.id}: ${i}`);
  });
});

describe('sweep normalisation', () => {
  it('hides the tool name, case directories, dates, host sizes and progress granularity', () => {
    const q = "qemu-img: Could not open '/tmp/x/q/a.qcow2'\nTry 'qemu-img --help'\n1  s1  0 B 2026-01-02 03:04:05 00:00:00.000\ndisk size: 196 KiB\n    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\n";
    const v = "vdisk: Could not open '/tmp/x/v/a.qcow2'\nTry 'vdisk --help'\n1  s1  0 B 2025-12-31 23:59:59 0000:00:00.000\ndisk size: 200 KiB\n    (0.00/100%)\r    (100.00/100%)\n";
    assert.equal(normalizeText(q, ['/tmp/x/q', '/tmp/x']), normalizeText(v, ['/tmp/x/v', '/tmp/x']));
    assert.notEqual(normalizeText('    (50.00/100%)\n', []), normalizeText('    (100.00/100%)\n', []));
  });

  it('drops host-dependent info fields but keeps the rest', () => {
    const a = normalizeInfo({ 'actual-size': 1, 'virtual-size': 4, snapshots: [{ id: '1', 'date-sec': 5 }] }, []);
    const b = normalizeInfo({ 'virtual-size': 4, 'actual-size': 2, snapshots: [{ 'date-sec': 6, id: '1' }] }, []);
    assert.deepEqual(a, b);
    assert.notDeepEqual(normalizeInfo({ 'virtual-size': 4 }, []), normalizeInfo({ 'virtual-size': 5 }, []));
  });

  it('compares maps without host offsets, and can tell host holes from allocation', () => {
    const q = normalizeMap('[{ "start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "offset": 327680}]');
    const v = normalizeMap(
      '[{ "start": 0, "length": 16384, "depth": 0, "present": true, "zero": true, "data": true, "offset": 5}, { "start": 16384, "length": 49152, "depth": 0, "present": true, "zero": false, "data": true, "offset": 9}]',
    );
    assert.notEqual(mapText(q), mapText(v));
    assert.equal(mapText(withoutHostHoles(q)), mapText(withoutHostHoles(v)));
  });
});
