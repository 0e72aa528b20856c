/**
 * The `vdisk` command: qemu-img's command line over the vdisk API.
 */
import { HelpRequest, parseArgs, parsingCommand, UsageError, type OptSpec } from './args.js';
import { tuneForLongRun } from './process-setup.js';
import { PROG, reportError, type CliIo, type Command } from './context.js';
import { sizeDeprecations } from '../core/sizes.js';
import { applyTraceOption, TraceOptionError } from './trace-option.js';
import { versionText } from './version-text.js';

/**
 * Every subcommand this build has, each loaded when it runs: a short command
 * (`vdisk info`) then evaluates only the modules it reaches, not the copy
 * engine, codecs and writers of the others (start-up is most of its time).
 */
export const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  amend: async () => (await import('./commands/amend.js')).amendCommand,
  bench: async () => (await import('./commands/bench.js')).benchCommand,
  bitmap: async () => (await import('./commands/bitmap.js')).bitmapCommand,
  check: async () => (await import('./commands/check.js')).checkCommand,
  commit: async () => (await import('./commands/commit.js')).commitCommand,
  compare: async () => (await import('./commands/compare.js')).compareCommand,
  convert: async () => (await import('./commands/convert.js')).convertCommand,
  create: async () => (await import('./commands/create.js')).createCommand,
  dd: async () => (await import('./commands/dd.js')).ddCommand,
  info: async () => (await import('./commands/info.js')).infoCommand,
  inspect: async () => (await import('./commands/inspect.js')).inspectCommand,
  validate: async () => (await import('./commands/validate.js')).validateCommand,
  map: async () => (await import('./commands/map.js')).mapCommand,
  measure: async () => (await import('./commands/measure.js')).measureCommand,
  rebase: async () => (await import('./commands/rebase.js')).rebaseCommand,
  resize: async () => (await import('./commands/resize.js')).resizeCommand,
  snapshot: async () => (await import('./commands/snapshot.js')).snapshotCommand,
};

/** The help text (it lists the format drivers, so it loads the registry: only when asked for). */
const help = async (): Promise<string> => (await import('./help.js')).helpText();

const GLOBAL: readonly OptSpec[] = [
  { key: 'help', short: 'h', long: ['help'] },
  { key: 'version', short: 'V', long: ['version'] },
  { key: 'trace', short: 'T', long: ['trace'], arg: true, multi: true },
];

/** Runs the CLI on `argv` (the words after the program name); returns the exit status. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    parsingCommand('');
    const args = parseArgs(argv, GLOBAL, true);
    if (args.flags.has('help')) {
      io.stdout(await help());
      return 0;
    }
    if (args.flags.has('version')) {
      io.stdout(versionText());
      return 0;
    }
    for (const t of args.values.get('trace') ?? []) applyTraceOption(t, io);
    const [name, ...rest] = args.operands;
    if (name === undefined) throw new UsageError('Not enough arguments');
    const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!load) throw new UsageError(`Command not found: ${name}`);
    if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
      io.stdout(await help());
      return 0;
    }
    if (name !== 'info') tuneForLongRun();
    // warn_report's line for each size the command reads as hex with a suffix.
    parsingCommand(name);
    sizeDeprecations.onHexSuffix = (text) => io.stderr(`${PROG}: warning: Using a multiplier suffix on hex numbers is deprecated: ${text}\n`);
    return await (await load())(rest, io);
  } catch (err) {
    if (err instanceof HelpRequest) {
      io.stdout(await help());
      return 0;
    }
    if (err instanceof TraceOptionError) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    return reportError(io, err);
  } finally {
    parsingCommand(undefined);
    sizeDeprecations.onHexSuffix = undefined;
  }
}
