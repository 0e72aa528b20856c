/**
 * The `vdisk` command: qemu-img's command line over the vdisk API.
 */
import { parseArgs, UsageError, type OptSpec } from './args.js';
import { amendCommand } from './commands/amend.js';
import { checkCommand } from './commands/check.js';
import { commitCommand } from './commands/commit.js';
import { rebaseCommand } from './commands/rebase.js';
import { createCommand } from './commands/create.js';
import { resizeCommand } from './commands/resize.js';
import { snapshotCommand } from './commands/snapshot.js';
import { benchCommand } from './commands/bench.js';
import { bitmapCommand } from './commands/bitmap.js';
import { compareCommand } from './commands/compare.js';
import { convertCommand } from './commands/convert.js';
import { ddCommand } from './commands/dd.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { mapCommand } from './commands/map.js';
import { measureCommand } from './commands/measure.js';
import { reportError, type CliIo, type Command } from './context.js';
import { helpText, versionText } from './help.js';
import { applyTraceOption, TraceOptionError } from './trace-option.js';

/** Every subcommand this build has. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  amend: amendCommand,
  bench: benchCommand,
  bitmap: bitmapCommand,
  check: checkCommand,
  commit: commitCommand,
  compare: compareCommand,
  convert: convertCommand,
  create: createCommand,
  dd: ddCommand,
  info: infoCommand,
  inspect: inspectCommand,
  map: mapCommand,
  measure: measureCommand,
  rebase: rebaseCommand,
  resize: resizeCommand,
  snapshot: snapshotCommand,
};

const GLOBAL: readonly OptSpec[] = [
  { key: 'help', short: 'h', long: ['help'] },
  { key: 'version', short: 'V', long: ['version'] },
  { key: 'trace', short: 'T', long: ['trace'], arg: true, multi: true },
];

/** Runs the CLI on `argv` (the words after the program name); returns the exit status. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, GLOBAL, true);
    if (args.flags.has('help')) {
      io.stdout(helpText());
      return 0;
    }
    if (args.flags.has('version')) {
      io.stdout(versionText());
      return 0;
    }
    for (const t of args.values.get('trace') ?? []) applyTraceOption(t, io);
    const [name, ...rest] = args.operands;
    if (name === undefined) throw new UsageError('Not enough arguments');
    const command = COMMANDS[name];
    if (!command) throw new UsageError(`Command not found: ${name}`);
    if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
      io.stdout(helpText());
      return 0;
    }
    return await command(rest, io);
  } catch (err) {
    if (err instanceof TraceOptionError) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    return reportError(io, err);
  }
}
