/**
 * Scratch files nobody else can open: created in a fresh private directory
 * (mkdtemp, mode 0700) under `dir` or the OS temporary directory, and
 * unlinked as soon as they are open, so nothing is left behind when the
 * process dies. Inflated uploads and the spills of streams use them.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fsError } from './errno.js';
import { mkdtemp, rm } from './fs-calls.js';
import { FileStore } from './file-store.js';

/**
 * A writable, already unlinked file in a fresh private directory under
 * `dir` (default the OS temporary directory), shown as `name` in messages.
 */
export async function privateFile(dir: string | undefined, prefix: string, name: string): Promise<FileStore> {
  const base = dir ?? tmpdir();
  let made: string;
  try {
    made = await mkdtemp(join(base, `${prefix}-`));
  } catch (err) {
    throw fsError(err, `Could not create a temporary directory in '${base}'`, base);
  }
  try {
    return await FileStore.open(join(made, 'file'), { readOnly: false, create: true, name });
  } finally {
    // The open file lives on without a name.
    await rm(made, { recursive: true, force: true });
  }
}
