/**
 * Sizes between vdisk's limit (2^53 - 1 bytes) and qemu's (INT64_MAX,
 * BDRV_MAX_LENGTH for resize) are refused naming vdisk's limit, never with
 * qemu's "Must be between 0 and 9223372036854775807" for a size inside it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';
import { tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-msgs-size-');
after(() => dir.cleanup());

describe('sizes above vdisk limit and within qemu-img range', () => {
  it('create names vdisk limit', () => {
    const r = vdisk(['create', '-f', 'qcow2', 'x.qcow2', '9223372036854775807'], { cwd: dir.path });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'vdisk: Image size 9223372036854775807 is larger than vdisk supports (2^53 - 1)\n');
    // beyond INT64_MAX qemu-img's own words
    const q = vdisk(['create', '-f', 'qcow2', 'x.qcow2', '8E'], { cwd: dir.path });
    assert.equal(q.stderr, 'vdisk: Invalid image size specified. Must be between 0 and 9223372036854775807.\n');
  });

  it('resize names vdisk limit once the size is one qemu would try', () => {
    assert.equal(vdisk(['create', '-q', '-f', 'raw', 'r.raw', '1M'], { cwd: dir.path }).status, 0);
    const r = vdisk(['resize', '-f', 'raw', 'r.raw', '9007199254740993'], { cwd: dir.path });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'vdisk: Image size 9007199254740993 is larger than vdisk supports (2^53 - 1)\n');
  });
});
