/** VHD parent locators keep names that are not UTF-8 as bytes. */
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { encodeName } from '../../../src/core/byte-names.js';
import { decodeLocator } from '../../../src/formats/vpc/parent.js';

const bytesOf = (name: string): string => encodeName(name).toString('hex');

it('MacX file URLs and the old ASCII locators name the bytes they hold', () => {
  const latin = Buffer.concat([Buffer.from('/d/p'), Buffer.from([0xe9]), Buffer.from('.vhd')]);
  assert.equal(bytesOf(decodeLocator('MacX', Buffer.from('file://localhost/d/p%E9.vhd\0junk'))), latin.toString('hex'));
  assert.equal(decodeLocator('MacX', Buffer.from('file:///d/%C3%A9%20x.vhd')), '/d/é x.vhd');
  assert.equal(decodeLocator('MacX', Buffer.from('file:///d/100%.vhd')), '/d/100%.vhd');
  assert.equal(bytesOf(decodeLocator('Wi2r', Buffer.concat([Buffer.from('.\\p'), Buffer.from([0xe9]), Buffer.from('.vhd\0')]))), Buffer.concat([Buffer.from('p'), Buffer.from([0xe9]), Buffer.from('.vhd')]).toString('hex'));
});
