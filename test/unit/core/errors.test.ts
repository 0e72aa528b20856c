import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as errors from '../../../src/core/errors.js';

const table: [new (m: string) => errors.VdiskError, errors.ErrorCode, errors.ErrorFault, string][] = [
  [errors.InvalidArgumentError, 'EINVAL', 'user', 'InvalidArgumentError'],
  [errors.NotFoundError, 'ENOENT', 'user', 'NotFoundError'],
  [errors.UnknownFormatError, 'EFORMAT', 'user', 'UnknownFormatError'],
  [errors.CorruptImageError, 'ECORRUPT', 'image', 'CorruptImageError'],
  [errors.UnsupportedError, 'EUNSUPPORTED', 'user', 'UnsupportedError'],
  [errors.LockedError, 'EBUSY', 'environment', 'LockedError'],
  [errors.AbortError, 'EABORTED', 'user', 'AbortError'],
  [errors.IoError, 'EIO', 'environment', 'IoError'],
  [errors.UnsafeReferenceError, 'EUNSAFE', 'image', 'UnsafeReferenceError'],
  [errors.BackingLoopError, 'ELOOP', 'image', 'BackingLoopError'],
  [errors.ChainDepthError, 'EDEPTH', 'image', 'ChainDepthError'],
];

describe('error classes', () => {
  for (const [Ctor, code, fault, name] of table) {
    it(`${name} has code ${code}, fault ${fault}`, () => {
      const e = new Ctor('boom');
      assert.equal(e.code, code);
      assert.equal(e.fault, fault);
      assert.equal(e.name, name);
      assert.ok(e instanceof errors.VdiskError);
      assert.ok(e instanceof Error);
      assert.ok(errors.isVdiskError(e));
      assert.deepEqual(e.toJSON(), { name, code, fault, message: 'boom' });
    });
  }
  it('keeps subclass instanceof precise', () => {
    assert.equal(new errors.NotFoundError('x') instanceof errors.CorruptImageError, false);
  });
  it('recognises errors from another copy of the package by brand', () => {
    const foreign = Object.create(null) as object;
    Object.defineProperty(foreign, Symbol.for('vdisk.error'), { value: true });
    assert.ok(foreign instanceof errors.VdiskError);
    assert.equal({} instanceof errors.VdiskError, false);
  });
  it('carries file, offset and cause', () => {
    const cause = new Error('inner');
    const e = new errors.CorruptImageError('bad L2 table', { file: 'a.qcow2', offset: 65536, cause });
    assert.equal(e.file, 'a.qcow2');
    assert.equal(e.offset, 65536);
    assert.equal(e.cause, cause);
  });
});
