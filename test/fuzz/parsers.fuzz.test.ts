/**
 * Fuzzing the text parsers (sizes, -o option strings, command lines) and
 * probing: random input gives a result or a typed error, never a crash.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseArgs, UsageError, type OptSpec } from '../../src/cli/args.js';
import { probeHead } from '../../src/block/probe.js';
import { defaultRegistry } from '../../src/block/registry.js';
import { VdiskError } from '../../src/core/errors.js';
import { parseOptionString, typeOptions, type OptionSpec } from '../../src/core/options.js';
import { parseSize, parseSizeBig } from '../../src/core/sizes.js';
import { iterations, rng } from '../helpers/fuzz.js';

const ALPHABET = '0123456789abcdefxXkKmMgGtTpPeEbB.,=+- \t?nohelp_';

function randomText(next: () => number, max = 24): string {
  const n = Math.floor(next() * max);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return s;
}

const OPTS: OptionSpec[] = [
  { name: 'size', type: 'size', help: '' },
  { name: 'backing_file', type: 'string', help: '' },
  { name: 'lazy_refcounts', type: 'bool', help: '' },
  { name: 'refcount_bits', type: 'number', help: '' },
];
const ARGSPECS: OptSpec[] = [
  { key: 'f', short: 'f', long: ['format'], arg: true },
  { key: 'q', short: 'q', long: ['quiet'] },
  { key: 'o', short: 'o', long: ['options'], arg: true, multi: true },
];

describe('parser fuzzing', () => {
  it('parseSizeBig never throws and agrees with parseSize', () => {
    const next = rng(1);
    for (let i = 0; i < iterations(5000); i++) {
      const text = randomText(next);
      const r = parseSizeBig(text);
      if (r.ok) assert.ok(r.value >= 0n && r.value < 1n << 64n, text);
      try {
        const n = parseSize(text);
        assert.ok(r.ok && BigInt(n) === r.value, text);
      } catch (err) {
        // EINVAL for what qemu-img refuses too; EUNSUPPORTED for sizes only vdisk's 2^53 limit refuses.
        const ok = err instanceof VdiskError && (err.code === 'EINVAL' || (err.code === 'EUNSUPPORTED' && err.data?.['kind'] === 'size-limit'));
        assert.ok(ok, `${text}: ${String(err)}`);
      }
    }
  });

  it('option strings parse and type to values or typed errors', () => {
    const next = rng(2);
    for (let i = 0; i < iterations(5000); i++) {
      const text = randomText(next, 40).replace(/[a-z]+/g, () => ['size', 'backing_file', 'lazy_refcounts', 'refcount_bits', 'on', 'off'][Math.floor(next() * 6)] ?? '');
      try {
        typeOptions(OPTS, parseOptionString(text));
      } catch (err) {
        assert.ok(err instanceof VdiskError, `${text}: ${String(err)}`);
      }
    }
  });

  it('command lines parse or give usage errors', () => {
    const next = rng(3);
    const words = ['-f', '-q', '-o', '--format', '--format=raw', '--quiet', '--opt', '--', '-qf', 'x', '-', '--bogus', '-Z', 'a=b'];
    for (let i = 0; i < iterations(5000); i++) {
      const argv = Array.from({ length: Math.floor(next() * 6) }, () => words[Math.floor(next() * words.length)] ?? '');
      try {
        parseArgs(argv, ARGSPECS);
      } catch (err) {
        assert.ok(err instanceof UsageError, `${argv.join(' ')}: ${String(err)}`);
      }
    }
  });

  it('probing random heads never throws and always finds a driver', () => {
    const next = rng(4);
    for (let i = 0; i < iterations(2000); i++) {
      const head = new Uint8Array(Math.floor(next() * 4096));
      for (let j = 0; j < head.length; j++) head[j] = Math.floor(next() * 256);
      if (head.length >= 4 && next() < 0.5) head.set([0x51, 0x46, 0x49, 0xfb]);
      assert.ok(probeHead(head, 'x', defaultRegistry));
    }
  });
});
