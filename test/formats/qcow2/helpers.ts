/** Shared helpers for the qcow2 tests: create through the driver, external-file opener. */
import { dirname, isAbsolute, join } from 'node:path';

import type { ExternalFiles, OptionValue } from '../../../src/formats/driver.js';
import { qcow2Driver } from '../../../src/formats/qcow2/index.js';
import type { ByteStore } from '../../../src/io/byte-store.js';
import { FileStore } from '../../../src/io/file-store.js';

/** Opens external files relative to the image's directory. */
export function externalFor(imagePath: string): ExternalFiles {
  return {
    async open(name, _role, o) {
      const path = isAbsolute(name) ? name : join(dirname(imagePath), name);
      return FileStore.open(path, { readOnly: o.readOnly, create: o.create });
    },
  };
}

/** Creates a qcow2 file at `path` through the driver. */
export async function createFile(path: string, size: number, options: Record<string, OptionValue> = {}): Promise<void> {
  const store = await FileStore.open(path, { readOnly: false, create: true });
  try {
    await createOn(store, path, size, options);
  } finally {
    await store.close();
  }
}

/** Creates a qcow2 image on `store` through the driver. */
export async function createOn(store: ByteStore, name: string, size: number, options: Record<string, OptionValue> = {}): Promise<void> {
  const create = qcow2Driver.create;
  if (!create) throw new Error('qcow2 has no create');
  await create(store, { size, options: new Map(Object.entries(options)), filename: name, external: externalFor(name) });
}
