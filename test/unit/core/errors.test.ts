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
  it('rephrase keeps the class, code and fault, with this error as the cause', () => {
    const base = new errors.VdiskError('ENOSPC', 'environment', 'No space left on device', { file: 'a', offset: 7, hint: 'h', data: { k: 1 } });
    const r = base.rephrase('t.qcow2: No space left on device', { file: 't.qcow2' });
    assert.equal(r.message, 't.qcow2: No space left on device');
    assert.equal(r.code, 'ENOSPC');
    assert.equal(r.fault, 'environment');
    assert.equal(r.file, 't.qcow2');
    assert.equal(r.offset, 7);
    assert.equal(r.hint, 'h');
    assert.deepEqual(r.data, { k: 1 });
    assert.equal(r.cause, base);
    const locked = new errors.LockedError('Failed to get "write" lock', { file: 'x' }).rephrase('x: Failed to get "write" lock', { hint: undefined });
    assert.ok(locked instanceof errors.LockedError);
    assert.equal(locked.code, 'EBUSY');
    assert.equal(locked.name, 'LockedError');
    assert.equal(locked.hint, undefined);
  });
});
