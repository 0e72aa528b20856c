import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatSize, parseSize, parseSizeBig, sizeDeprecations, withoutSizeWarnings } from '../../../src/core/sizes.js';
import { InvalidArgumentError, VdiskError } from '../../../src/core/errors.js';
import { cFixed } from '../../../src/core/c-format.js';

describe('parseSizeBig', () => {
  const ok: [string, bigint][] = [
    ['0', 0n], ['1', 1n], ['1b', 1n], ['1B', 1n], ['1k', 1024n], ['1K', 1024n], ['1M', 1048576n], ['1m', 1048576n],
    ['1G', 1073741824n], ['1.5G', 1610612736n], ['1T', 1n << 40n], ['1P', 1n << 50n], ['1E', 1n << 60n],
    ['0x10', 16n], ['0X1f', 31n], [' 5', 5n], ['+5', 5n], ['1.k', 1024n], ['1.0', 1n], ['0.5k', 512n], ['15E', 15n << 60n],
    // qemu-img 7.2 still scales hex by k, M, G, T, P (deprecated); b and E are hex digits there.
    ['0x10k', 16384n], ['0x1M', 1048576n], ['0X2g', 2n << 30n], ['0x1P', 1n << 50n], ['0x1e', 30n], ['0x1b', 27n], ['0x1E', 30n],
  ];
  for (const [text, value] of ok) {
    it(`accepts ${JSON.stringify(text)}`, () => assert.deepEqual(parseSizeBig(text), { ok: true, value }));
  }
  const bad = ['', 'abc', '1Q', '-5', '-0', '1e3', '1.5', '1.5b', '0x1.8G', '0x1k5', '0xk', '5 ', '1.5e3G', 'k', '.5'];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)} as invalid`, () => assert.deepEqual(parseSizeBig(text), { ok: false, reason: 'invalid' }));
  }
  it('reports each hex size with a suffix to the deprecation hook, unless muted', () => {
    const seen: string[] = [];
    sizeDeprecations.onHexSuffix = (text) => seen.push(text);
    try {
      parseSizeBig('0x1M');
      parseSizeBig('0x1k5');
      parseSizeBig('0x10');
      parseSizeBig('1M');
      withoutSizeWarnings(() => parseSizeBig('0x2M'));
      withoutSizeWarnings(() => parseSize('0x3M'));
      parseSize('0x4M');
    } finally {
      sizeDeprecations.onHexSuffix = undefined;
    }
    assert.deepEqual(seen, ['0x1M', '0x1k5', '0x4M']);
  });
  it('reports values beyond 2^64 as out of range', () => {
    assert.deepEqual(parseSizeBig('99999E'), { ok: false, reason: 'range' });
    assert.deepEqual(parseSizeBig('18446744073709551616'), { ok: false, reason: 'range' });
  });
});

describe('parseSize', () => {
  it('returns numbers for sizes within range', () => assert.equal(parseSize('1.5G'), 1610612736));
  it('gives qemu-img\'s range message beyond the limit', () => {
    assert.throws(() => parseSize('9E'), (e: unknown) => e instanceof InvalidArgumentError && /Must be between 0 and 9223372036854775807\./.test(e.message));
    // Between vdisk's bound (2^53 - 1) and qemu-img's (2^63 - 1): say plainly that the limit is vdisk's.
    assert.throws(() => parseSize('9223372036854775807'), (e: unknown) => e instanceof VdiskError && /larger than vdisk supports \(2\^53 - 1\)/.test(e.message));
    assert.throws(() => parseSize('8P'), (e: unknown) => e instanceof VdiskError && /larger than vdisk supports/.test(e.message));
    assert.equal(parseSize('9007199254740991'), Number.MAX_SAFE_INTEGER);
  });
  it('gives qemu-img\'s syntax message for garbage', () => {
    assert.throws(() => parseSize('1e3'), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'EINVAL' && /You may use k, M, G, T, P or E suffixes/.test(e.message));
  });
  it('accepts safe integers and rejects negative numbers', () => {
    assert.equal(parseSize(4096), 4096);
    assert.throws(() => parseSize(-1), InvalidArgumentError);
  });
});

describe('formatSize', () => {
  const cases: [number, string][] = [
    [0, '0 B'], [512, '512 B'], [4096, '4 KiB'], [569344, '556 KiB'], [1114624, '1.06 MiB'], [1031798, '0.984 MiB'],
    [67108864, '64 MiB'], [1073741824, '1 GiB'], [10485760, '10 MiB'], [1000, '0.977 KiB'], [999, '999 B'],
    [2 ** 61, '2 EiB'], [1610612736, '1.5 GiB'],
    // exact ties round to the even digit, as printf does: 192.5 KiB, 193.5 KiB, 1.125 MiB, 999.5 MiB
    [197120, '192 KiB'], [198144, '194 KiB'], [1179648, '1.12 MiB'], [1048051712, '1e+03 MiB'],
  ];
  for (const [n, s] of cases) it(`prints ${n} as ${s}`, () => assert.equal(formatSize(n), s));
});

describe('cFixed (printf %.Nf)', () => {
  const cases: [number, number, string][] = [
    [3.125, 2, '3.12'], [3.375, 2, '3.38'], [0.125, 2, '0.12'], [2.5, 0, '2'], [3.5, 0, '4'], [1.005, 2, '1.00'], [100, 2, '100.00'], [-0.125, 2, '-0.12'],
  ];
  for (const [v, d, s] of cases) it(`prints ${v} with ${d} decimals as ${s}`, () => assert.equal(cFixed(v, d), s));
});
