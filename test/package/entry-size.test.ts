/**
 * The main entry stays narrow: what a user calls. Driver authors' names live
 * in vdisk/driver; both entries are one set of modules (no value is a copy).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';

it('the main entry exports at most 40 values', async () => {
  const main = await import('../../src/index.js');
  assert.ok(Object.keys(main).length <= 40, `${Object.keys(main).length} values: ${Object.keys(main).join(', ')}`);
});

it('vdisk/driver shares its values with the main entry and the modules users reach', async () => {
  const main = await import('../../src/index.js');
  const driver = await import('../../src/driver.js');
  assert.equal(driver.decodeName, main.decodeName);
  const { open } = await import('../../src/block/open.js');
  assert.equal(main.open, open);
  // A driver registered here is the one open() and every job consult by default.
  const { defaultRegistry } = await import('../../src/block/registry.js');
  assert.equal(driver.defaultRegistry, defaultRegistry);
});
