/**
 * Command dispatch now that commands load on demand: a name that is only an
 * inherited property of a plain object (`toString`, `__proto__`) is an
 * unknown command, as in qemu-img, not a call into Object.prototype.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { asVdisk, vdisk } from '../helpers/cli.js';
import { qemuImg, requireQemu, tmpDir } from '../helpers/qemu.js';

describe('command names that are Object.prototype properties', () => {
  for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
    it(name, (t) => {
      if (!requireQemu(t)) return;
      const dir = tmpDir();
      try {
        const q = qemuImg([name, 'x.img'], { cwd: dir.path });
        const v = vdisk([name, 'x.img'], { cwd: dir.path });
        assert.equal(v.stderr, asVdisk(q.stderr));
        assert.equal(v.stdout, q.stdout);
        assert.equal(v.status, q.status);
      } finally {
        dir.cleanup();
      }
    });
  }
});
