/**
 * capabilitiesOf: what a format can do, derived from the hooks its driver
 * and an open image implement, checked against what qemu-img 7.2 offers
 * per format.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BlockDevice } from '../../src/block/device.js';
import { capabilitiesOf, type ExternalFiles, type FormatDriver } from '../../src/formats/driver.js';
import { builtinDrivers } from '../../src/formats/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const noExternal: ExternalFiles = { open: () => Promise.reject(new Error('no external files here')) };

function driver(name: string): FormatDriver {
  const d = builtinDrivers.find((x) => x.name === name);
  assert.ok(d, name);
  return d;
}

/** [format, create, write, backing, measure, amend], as qemu-img 7.2 has them. */
const DRIVER_ROWS: readonly [string, boolean, boolean, boolean, boolean, boolean][] = [
  ['qcow2', true, true, true, true, true],
  ['raw', true, true, false, true, false],
  ['file', true, true, false, false, false],
  ['luks', true, true, false, true, true],
  ['qcow', true, true, true, false, false],
  ['qed', true, true, true, false, false],
  ['vmdk', true, true, true, false, false],
  ['vpc', true, true, false, false, false],
  ['vdi', true, true, false, false, false],
  ['vhdx', true, true, false, false, false],
  ['parallels', true, true, false, false, false],
  ['dmg', false, false, false, false, false],
  ['bochs', false, false, false, false, false],
  ['cloop', false, false, false, false, false],
];

async function openNew(format: string, readOnly: boolean): Promise<BlockDevice> {
  const store = new MemoryStore(`mem.${format}`);
  await driver(format).create!(store, { size: 4 * 1024 * 1024, options: new Map(), filename: store.name, external: noExternal });
  return BlockDevice.open(store, { format, readOnly });
}

describe('capabilitiesOf', () => {
  it('covers every built-in driver', () => {
    assert.deepEqual(DRIVER_ROWS.map((r) => r[0]).sort(), builtinDrivers.map((d) => d.name).sort());
  });

  for (const [name, create, write, backing, measure, amend] of DRIVER_ROWS) {
    it(`${name}: the driver record alone`, () => {
      const c = capabilitiesOf(driver(name));
      assert.deepEqual({ create: c.create, write: c.write, backing: c.backing, measure: c.measure, amend: c.amend }, { create, write, backing, measure, amend });
      // What only an open image knows stays unknown.
      assert.deepEqual([c.compress, c.resize, c.snapshots, c.check, c.repair, c.bitmaps], [undefined, undefined, undefined, undefined, undefined, undefined]);
    });
  }

  it('qcow2 opened read/write has snapshots, bitmaps, amend, resize, check with repair and compression', async () => {
    const dev = await openNew('qcow2', false);
    const c = capabilitiesOf(driver('qcow2'), dev.top.image);
    assert.deepEqual(c, { create: true, backing: true, measure: true, write: true, amend: true, compress: true, resize: true, snapshots: true, check: true, repair: true, bitmaps: true });
    await dev.close();
  });

  it('qcow2 opened read-only lists snapshots and checks, but cannot write, resize or amend', async () => {
    const dev = await openNew('qcow2', true);
    const c = capabilitiesOf(driver('qcow2'), dev.top.image);
    assert.deepEqual([c.write, c.resize, c.amend, c.compress], [false, false, false, false]);
    assert.deepEqual([c.snapshots, c.check, c.bitmaps], [true, true, true]);
    await dev.close();
  });

  it('raw resizes and nothing more', async () => {
    const dev = await openNew('raw', false);
    const c = capabilitiesOf(driver('raw'), dev.top.image);
    assert.deepEqual(c, { create: true, backing: false, measure: true, write: true, amend: false, compress: false, resize: true, snapshots: false, check: false, repair: false, bitmaps: false });
    await dev.close();
  });

  it('vdi checks without repair and cannot resize', async () => {
    const dev = await openNew('vdi', false);
    const c = capabilitiesOf(driver('vdi'), dev.top.image);
    assert.deepEqual([c.check, c.repair, c.resize, c.snapshots, c.compress], [true, false, false, false, false]);
    await dev.close();
  });
});
