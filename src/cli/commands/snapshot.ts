import { constants } from 'node:os';

import { open } from '../../block/open.js';
import { InvalidArgumentError, VdiskError } from '../../core/errors.js';
import { strerror, systemErrno } from '../../core/strerror.js';
import { snapshotInfo } from '../../jobs/info.js';
import { snapshot, type SnapshotAction } from '../../jobs/snapshot.js';
import { parseArgs, UsageError, type OptSpec } from '../args.js';
import { reportError, warningPrinter, type CliIo } from '../context.js';
import { imageArg } from '../image-opts.js';
import { snapshotHeader, snapshotRow } from '../info-human.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

/** qemu-img 7.2's options: no `-f` (rejected) and no long action names. */
const SPECS: readonly OptSpec[] = [
  { key: 'list', short: 'l' },
  { key: 'apply', short: 'a', arg: true, multi: true },
  { key: 'create', short: 'c', arg: true, multi: true },
  { key: 'delete', short: 'd', arg: true, multi: true },
  { key: 'quiet', short: 'q', long: ['quiet'] },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
];

const STRERROR: Readonly<Record<number, string>> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  5: 'Input/output error',
  22: 'Invalid argument',
  27: 'File too large',
  28: 'No space left on device',
  95: 'Operation not supported',
};

const CODE_ERRNO: Readonly<Record<string, number>> = { EUNSUPPORTED: 95, EINVAL: 22, ENOENT: 2, EPERM: 1 };

/** qemu's -errno for a failure: the error's own, the system's under it (EFBIG, ENOSPC), else by vdisk's code. */
function errnoOf(err: VdiskError): { errno: number; text: string } {
  const code = err.errno === undefined ? systemErrno(err) : undefined;
  const system = code === undefined ? undefined : (constants.errno as Record<string, number | undefined>)[code];
  if (code !== undefined && system !== undefined) return { errno: system, text: strerror(code) };
  const errno = err.errno ?? CODE_ERRNO[err.code] ?? 5;
  return { errno, text: STRERROR[errno] ?? 'Unknown error' };
}

/** qemu-img's wording for a failed action (open errors pass through unchanged). */
function actionMessage(action: SnapshotAction, name: string, err: VdiskError): string {
  const noSnapshots = err.reason === 'no-snapshots';
  switch (action) {
    case 'create': {
      const { errno, text } = errnoOf(err);
      return `Could not create snapshot '${name}': -${errno} (${text})`;
    }
    case 'apply':
      if (noSnapshots) return `Could not apply snapshot '${name}': Block driver does not support snapshots`;
      if (err.code === 'ENOENT') return `Could not apply snapshot '${name}': Failed to load snapshot: No such file or directory`;
      return `Could not apply snapshot '${name}': ${err.message}`;
    case 'delete':
      if (noSnapshots || err.code === 'ENOENT') return `Could not delete snapshot '${name}': snapshot not found`;
      return `Could not delete snapshot '${name}': ${err.message}`;
    case 'list':
      return err.message;
  }
}

function chooseAction(args: ReturnType<typeof parseArgs>): { action: SnapshotAction | undefined; name: string } {
  const given: [SnapshotAction, string[]][] = [
    ['list', args.flags.has('list') ? [''] : []],
    ['apply', args.values.get('apply') ?? []],
    ['create', args.values.get('create') ?? []],
    ['delete', args.values.get('delete') ?? []],
  ];
  const all = given.flatMap(([a, v]) => v.map((n) => [a, n] as const));
  if (all.length > 1) throw new UsageError("Cannot mix '-l', '-a', '-c', '-d'");
  const one = all[0];
  return one ? { action: one[0], name: one[1] } : { action: undefined, name: '' };
}

/** `vdisk snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename` */
export async function snapshotCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const { action, name } = chooseAction(args);
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const { filename, format } = imageArg(args.operands[0] as string, undefined, args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    // qemu-img 7.2 opens the image for writing and does nothing else when no action is given:
    // the open still fails as any writable open fails, and still repairs a dirty image.
    if (action === undefined) {
      // -U too: a writable open refuses it (force-share=on can only be used with read-only images).
      const dev = await open(filename, { format, readOnly: false, forceShare: args.flags.has('forceShare'), onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args) });
      await dev.close();
      return 0;
    }
    const forceShare = args.flags.has('forceShare');
    if (forceShare && action !== 'list') {
      throw new InvalidArgumentError(`Could not open '${filename}': force-share=on can only be used with read-only images`);
    }
    let result;
    try {
      result = await snapshot(filename, { action, name, format, forceShare, onWarning: warningPrinter(io), ...trustFrom(args), ...secretsFrom(args) });
    } catch (err) {
      if (err instanceof VdiskError && err.stage === 'action') {
        io.stderr(`vdisk: ${actionMessage(action, name, err)}\n`);
        return 1;
      }
      throw err;
    }
    if (action === 'list' && result.snapshots.length > 0) {
      io.stdout(['Snapshot list:', snapshotHeader(), ...result.snapshots.map((s) => snapshotRow(snapshotInfo(s)))].join('\n') + '\n');
    }
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
