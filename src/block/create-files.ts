/**
 * The files a create makes besides the image (a qcow2 data file), opened
 * with qemu's wording for a file that cannot be made, and removed again
 * when the create fails, as qcow2's create does (bdrv_co_delete_file_noerr).
 */

import { NotFoundError, VdiskError, LockedError } from '../core/errors.js';
import type { ExternalFiles } from '../formats/driver.js';
import { lstat, stat } from '../io/fs-calls.js';
import { rm } from '../io/fs-names.js';

type Warn = ((w: { code: string; message: string }) => void) | undefined;

/** `Could not open 'x': why` from opening a file to create, as raw_co_create words it. */
function createError(name: string, err: unknown): unknown {
  if (name === '') return new NotFoundError("Could not create '': No such file or directory", { cause: err });
  if (!(err instanceof VdiskError) || !err.message.startsWith(`Could not open '`) || err.code === 'EUNSAFE') return err;
  return err.rephrase(err.message.replace(/^Could not open /, 'Could not create '), { offset: undefined });
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}

/**
 * Wraps `base` for a create at `path`: `cleanup` deletes the data files it
 * made (or got as far as locking), after the image itself is gone. One that
 * is no longer a regular file (the image itself, already deleted) is
 * reported as qemu reports it, and the create's own error follows.
 */
export function createdFiles(base: ExternalFiles, path: string, onWarning: Warn): { external: ExternalFiles; cleanup: () => Promise<void> } {
  // Each data file by the name it was opened under (relative names are relative to the working directory, as in qemu).
  const made: { name: string; file: string }[] = [];
  const external: ExternalFiles = {
    async open(name, role, opts) {
      if (!opts.create) return base.open(name, role, opts);
      try {
        const store = await base.open(name, role, opts);
        if (role === 'data-file') made.push({ name, file: store.name });
        return store;
      } catch (err) {
        // The image itself as its data file: qemu creates both, conflicts only once both are open, and deletes both.
        if (role === 'data-file' && err instanceof LockedError && err.file !== undefined && (await sameFile(path, err.file))) made.push({ name, file: err.file });
        throw createError(name, err);
      }
    },
  };
  const cleanup = async (): Promise<void> => {
    for (const { name, file } of made) {
      const st = await lstat(file).catch(() => undefined);
      if (st?.isFile()) await rm(file, { force: true });
      else onWarning?.({ code: 'error-report', message: `${name} is not a regular file: No such file or directory` });
    }
  };
  return { external, cleanup };
}
