/**
 * A tiny test-only format: "TLNK", u16 name length, backing name, u16 format
 * length, format. 1 MiB virtual size, nothing allocated, so every read falls
 * through to the backing file. Lets the chain resolver be tested without
 * depending on a real format.
 */
import { writeFileSync } from 'node:fs';

import type { FormatDriver, FormatImage } from '../../src/formats/driver.js';
import { DriverRegistry } from '../../src/block/registry.js';
import { builtinDrivers } from '../../src/formats/index.js';

const MAGIC = 'TLNK';
export const LINK_SIZE = 1024 * 1024;

export const linkDriver: FormatDriver = {
  name: 'tlink',
  readOnly: true,
  createOptions: [],
  probe: (head) => (Buffer.from(head.subarray(0, 4)).toString('latin1') === MAGIC ? 100 : 0),
  async open(store): Promise<FormatImage> {
    const head = new Uint8Array(4096);
    await store.read(0, head);
    const b = Buffer.from(head);
    const n = b.readUInt16BE(4);
    const name = b.subarray(6, 6 + n).toString('utf8');
    const fn = b.readUInt16BE(6 + n);
    const format = b.subarray(8 + n, 8 + n + fn).toString('utf8');
    return {
      format: 'tlink',
      store,
      virtualSize: LINK_SIZE,
      granularity: 512,
      backing: n > 0 ? { filename: name, format: format || undefined } : undefined,
      mapping: async (offset, length) => [{ kind: 'unallocated', offset, length }],
      describe: async () => ({ dirty: false }),
      flush: async () => undefined,
      close: () => store.close(),
    };
  },
};

/** Writes a link image at `path` naming `backing` (with optional format). */
export function writeLink(path: string, backing: string, format = ''): void {
  const name = Buffer.from(backing, 'utf8');
  const fmt = Buffer.from(format, 'utf8');
  const b = Buffer.alloc(4096);
  b.write(MAGIC, 0, 'latin1');
  b.writeUInt16BE(name.length, 4);
  name.copy(b, 6);
  b.writeUInt16BE(fmt.length, 6 + name.length);
  fmt.copy(b, 8 + name.length);
  writeFileSync(path, b);
}

/** A registry with the built-in drivers plus the link driver. */
export function linkRegistry(): DriverRegistry {
  const r = new DriverRegistry(builtinDrivers);
  r.register(linkDriver);
  return r;
}
