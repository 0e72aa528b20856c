import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatQemuJson, qdictOrder } from '../../../src/cli/qemu-json.js';

describe('qdictOrder', () => {
  it('reproduces qemu-img info key order', () => {
    const schema = ['filename', 'format', 'dirty-flag', 'actual-size', 'virtual-size', 'cluster-size', 'backing-filename', 'full-backing-filename', 'backing-filename-format', 'snapshots', 'format-specific', 'children'];
    assert.deepEqual(qdictOrder(schema), [
      'children', 'backing-filename-format', 'snapshots', 'virtual-size', 'filename', 'cluster-size', 'format', 'actual-size',
      'format-specific', 'full-backing-filename', 'backing-filename', 'dirty-flag',
    ]);
  });
  it('reproduces qemu-img check key order', () => {
    const schema = ['filename', 'format', 'check-errors', 'image-end-offset', 'total-clusters', 'allocated-clusters', 'fragmented-clusters'];
    assert.deepEqual(qdictOrder(schema), ['image-end-offset', 'total-clusters', 'check-errors', 'allocated-clusters', 'filename', 'format', 'fragmented-clusters']);
  });
  it('reproduces the qcow2 format-specific order', () => {
    assert.deepEqual(qdictOrder(['compat', 'extended-l2', 'lazy-refcounts', 'corrupt', 'refcount-bits', 'bitmaps', 'compression-type']), [
      'compat', 'compression-type', 'lazy-refcounts', 'bitmaps', 'refcount-bits', 'corrupt', 'extended-l2',
    ]);
  });
});

describe('formatQemuJson', () => {
  it('prints empty containers on two lines and escapes like qemu', () => {
    assert.equal(formatQemuJson({ a: [], b: {} }), '{\n    "a": [\n    ],\n    "b": {\n    }\n}');
    assert.equal(formatQemuJson('x"é\\/'), '"x\\"\\u00E9\\\\/"');
    assert.equal(formatQemuJson('😀'), '"\\uD83D\\uDE00"');
  });
  it('leaves out undefined members', () => {
    assert.equal(formatQemuJson({ filename: 'a', format: undefined }), '{\n    "filename": "a"\n}');
  });
});
