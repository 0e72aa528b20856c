import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseArgs, UsageError, last, type OptSpec } from '../../../src/cli/args.js';

const SPECS: OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'options', short: 'o', long: ['options'], arg: true, multi: true },
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'output', long: ['output'], arg: true },
  { key: 'chain', long: ['backing-chain'] },
];

describe('parseArgs', () => {
  it('reads short options, clusters and attached values', () => {
    const a = parseArgs(['-qfraw', '-o', 'a=1', '-ob=2', 'x.img', '1G'], SPECS);
    assert.equal(last(a, 'format'), 'raw');
    assert.deepEqual(a.values.get('options'), ['a=1', 'b=2']);
    assert.ok(a.flags.has('quiet'));
    assert.deepEqual(a.operands, ['x.img', '1G']);
  });
  it('reads long options with = or a separate value, and unique prefixes', () => {
    const a = parseArgs(['--output=json', 'x', '--format', 'qcow2', '--back'], SPECS);
    assert.equal(last(a, 'output'), 'json');
    assert.equal(last(a, 'format'), 'qcow2');
    assert.ok(a.flags.has('chain'));
    assert.deepEqual(a.operands, ['x']);
  });
  it('treats everything after -- as operands', () => {
    assert.deepEqual(parseArgs(['x', '--', '-5'], SPECS).operands, ['x', '-5']);
  });
  it('stops at the first operand when asked (global options)', () => {
    assert.deepEqual(parseArgs(['info', '-f', 'raw'], SPECS, true).operands, ['info', '-f', 'raw']);
  });
  it('gives qemu-img\'s texts for bad options', () => {
    // and glibc getopt's own (printed by measure)
    assert.throws(() => parseArgs(['-Z'], SPECS), new UsageError("unrecognized option '-Z'", "invalid option -- 'Z'"));
    assert.throws(() => parseArgs(['--bogus'], SPECS), new UsageError("unrecognized option '--bogus'", "unrecognized option '--bogus'"));
    assert.throws(() => parseArgs(['-f'], SPECS), new UsageError("missing argument for option '-f'", "option requires an argument -- 'f'"));
    assert.throws(() => parseArgs(['--output'], SPECS), new UsageError("missing argument for option '--output'", "option '--output' requires an argument"));
  });
});
