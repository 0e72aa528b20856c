import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatOptionHelp, isHelpRequest, parseOptionString, typeOptions, type OptionSpec } from '../../../src/core/options.js';
import { InvalidArgumentError } from '../../../src/core/errors.js';

const SPECS: OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'backing_file', type: 'string', help: 'File name of a base image' },
  { name: 'lazy_refcounts', type: 'bool', help: 'Postpone refcount updates' },
  { name: 'refcount_bits', type: 'number', help: 'Width of a reference count entry in bits' },
];

describe('parseOptionString', () => {
  it('splits at commas and unescapes doubled commas', () => {
    assert.deepEqual(parseOptionString('size=1G,backing_file=a,,b'), [
      { key: 'size', value: '1G' },
      { key: 'backing_file', value: 'a,b' },
    ]);
  });
  it('reads a bare key as on and a no-prefixed key as off (QemuOpts)', () => {
    assert.deepEqual(parseOptionString('lazy_refcounts,nocow'), [
      { key: 'lazy_refcounts', value: 'on' },
      { key: 'cow', value: 'off' },
    ]);
  });
  it('recognises help requests', () => {
    assert.equal(isHelpRequest(parseOptionString('help')), true);
    assert.equal(isHelpRequest(parseOptionString('?')), true);
    assert.equal(isHelpRequest(parseOptionString('size=1')), false);
  });
});

describe('typeOptions', () => {
  it('types values by their spec', () => {
    const m = typeOptions(SPECS, parseOptionString('size=1M,lazy_refcounts=on,refcount_bits=64'));
    assert.equal(m.get('size'), 1048576);
    assert.equal(m.get('lazy_refcounts'), true);
    assert.equal(m.get('refcount_bits'), 64);
  });
  it('rejects unknown keys with qemu-img\'s message', () => {
    assert.throws(() => typeOptions(SPECS, parseOptionString('bogus=1')), { message: "Invalid parameter 'bogus'" });
  });
  it('rejects bad values with qemu-img\'s messages', () => {
    assert.throws(() => typeOptions(SPECS, parseOptionString('size=abc')), (e: unknown) => e instanceof InvalidArgumentError && e.message === "Parameter 'size' expects a non-negative number below 2^64" && /Optional suffix/.test(e.hint ?? ''));
    assert.throws(() => typeOptions(SPECS, parseOptionString('lazy_refcounts=maybe')), { message: "Parameter 'lazy_refcounts' expects 'on' or 'off'" });
    assert.throws(() => typeOptions(SPECS, parseOptionString('refcount_bits=x')), { message: "Parameter 'refcount_bits' expects a number" });
  });
});

describe('formatOptionHelp', () => {
  it('prints the qemu-img 7.2 layout, sorted', () => {
    assert.equal(
      formatOptionHelp('Supported x options:', SPECS),
      'Supported x options:\n' +
        '  backing_file=<str>     - File name of a base image\n' +
        '  lazy_refcounts=<bool (on/off)> - Postpone refcount updates\n' +
        '  refcount_bits=<num>    - Width of a reference count entry in bits\n' +
        '  size=<size>            - Virtual disk size\n',
    );
  });
});
