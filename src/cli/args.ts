/**
 * qemu-img-style command lines: GNU getopt_long semantics (short option
 * clusters, `-fqcow2` and `-f qcow2`, `--long=value` and `--long value`,
 * unique long prefixes, options after operands, `--` ends options) with
 * qemu-img's error texts.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** One option a command accepts. */
export interface OptSpec {
  /** Key the value is stored under. */
  readonly key: string;
  /** Short letter, if any. */
  readonly short?: string;
  /** Long names (without dashes). */
  readonly long?: readonly string[];
  /** Whether it takes an argument. */
  readonly arg?: boolean;
  /** Without `arg`: a flag that also takes a value as `--long=value` (getopt's optional_argument). */
  readonly optionalArg?: boolean;
  /** Repeatable: values accumulate in order. */
  readonly multi?: boolean;
  /** Validates a value as it is parsed (qemu-img acts on some options inside its getopt loop). */
  readonly check?: (value: string) => void;
}

/** Parsed options: last value wins unless the spec is `multi`. */
export interface ParsedArgs {
  readonly values: Map<string, string[]>;
  readonly flags: Set<string>;
  readonly operands: string[];
}

/**
 * A usage error: printed as `vdisk: msg` plus the `Try ... --help` line,
 * exit 1. `getopt` is what glibc's getopt says of a bad option itself (for
 * the one command whose getopt is not silent, measure).
 */
export class UsageError extends Error {
  readonly getopt: string | undefined;
  constructor(message: string, getopt?: string) {
    super(message);
    this.name = 'UsageError';
    this.getopt = getopt;
  }
}

/**
 * The long options qemu-img 7.2 itself has, per command (`''`: the global
 * ones). vdisk adds long spellings of its own (`--format` to convert,
 * `--max-chain-depth`, ...); an abbreviation qemu-img takes must still mean
 * what it means there, so prefixes are matched against these first.
 */
const QEMU_LONGS: Readonly<Record<string, readonly string[]>> = {
  '': ['help', 'version', 'trace'],
  amend: ['help', 'object', 'image-opts', 'force'],
  bench: ['help', 'flush-interval', 'image-opts', 'pattern', 'no-drain', 'force-share'],
  bitmap: ['help', 'object', 'image-opts', 'add', 'remove', 'clear', 'enable', 'disable', 'merge', 'granularity', 'source-file', 'source-format'],
  check: ['help', 'format', 'object', 'image-opts', 'repair', 'output', 'force-share'],
  commit: ['help', 'object', 'image-opts'],
  compare: ['help', 'object', 'image-opts', 'force-share'],
  convert: ['help', 'object', 'image-opts', 'target-image-opts', 'salvage', 'target-is-zero', 'bitmaps', 'skip-broken-bitmaps', 'force-share'],
  create: ['help', 'object'],
  dd: ['help', 'object', 'image-opts', 'force-share'],
  info: ['help', 'format', 'output', 'backing-chain', 'object', 'image-opts', 'force-share'],
  map: ['help', 'format', 'output', 'object', 'image-opts', 'force-share', 'start-offset', 'max-length'],
  measure: ['help', 'object', 'image-opts', 'output', 'size', 'force-share'],
  rebase: ['help', 'object', 'image-opts', 'force-share'],
  resize: ['help', 'object', 'image-opts', 'preallocation', 'shrink'],
  snapshot: ['help', 'object', 'image-opts', 'force-share'],
};

/** qemu-img's own long options for the command being parsed (set by the CLI's dispatch). */
let qemuLongs: readonly string[] | undefined;

/** Tells {@link parseArgs} which command's options it parses next (`''`: the global ones). */
export function parsingCommand(command: string | undefined): void {
  qemuLongs = command === undefined || !Object.hasOwn(QEMU_LONGS, command) ? undefined : QEMU_LONGS[command];
}

/**
 * `-h` or `--help` among a command's options: qemu-img prints its help and
 * exits 0 there, whatever else the line holds (an earlier bad option still
 * fails first).
 */
export class HelpRequest extends Error {
  constructor() {
    super('help');
    this.name = 'HelpRequest';
  }
}

/** What a `--name` stands for: an option (by its full name), several (ambiguous), or qemu-img's help. */
type LongMatch = { readonly spec: OptSpec; readonly full: string } | { readonly ambiguous: readonly string[] } | { readonly help: true } | undefined;

/** The option `--name` names exactly, or as the one unique prefix (of qemu-img's own names first). */
function findLong(specs: readonly OptSpec[], name: string): LongMatch {
  const exact = specs.find((s) => s.long?.includes(name));
  if (exact) return { spec: exact, full: name };
  const known = qemuLongs;
  if (known) {
    const theirs = known.filter((l) => l.startsWith(name));
    if (theirs.length > 1) return { ambiguous: theirs };
    const full = theirs[0];
    if (full !== undefined) {
      const spec = specs.find((s) => s.long?.includes(full));
      if (spec) return { spec, full };
      return full === 'help' ? { help: true } : undefined;
    }
  }
  const prefixed = specs.filter((s) => s.long?.some((l) => l.startsWith(name)));
  const only = prefixed[0];
  return prefixed.length === 1 && only ? { spec: only, full: only.long?.find((l) => l.startsWith(name)) ?? name } : undefined;
}

/** The option `--name` stands for among `specs`, as {@link parseArgs} resolves it; undefined when none or several. */
export function longOption(specs: readonly OptSpec[], name: string): OptSpec | undefined {
  const match = findLong(specs, name);
  return match !== undefined && 'spec' in match ? match.spec : undefined;
}

function store(out: ParsedArgs, spec: OptSpec, value: string | undefined): void {
  if (!spec.arg) {
    out.flags.add(spec.key);
    // The last spelling wins: `--progress=json -p` is the plain flag again.
    if (spec.optionalArg && value === undefined) out.values.delete(spec.key);
    else if (spec.optionalArg) out.values.set(spec.key, [value ?? '']);
    return;
  }
  spec.check?.(value ?? '');
  const list = out.values.get(spec.key) ?? [];
  if (spec.multi) list.push(value ?? '');
  else list.splice(0, list.length, value ?? '');
  out.values.set(spec.key, list);
}

/**
 * Parses `argv` (the words after the command name).
 *
 * @param stopAtOperand - stop at the first operand (getopt's `+`), as the global options do
 * @throws {UsageError} for unknown options and missing arguments
 */
export function parseArgs(argv: readonly string[], specs: readonly OptSpec[], stopAtOperand = false): ParsedArgs {
  const out: ParsedArgs = { values: new Map(), flags: new Set(), operands: [] };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') {
      out.operands.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = word.slice(2, eq >= 0 ? eq : undefined);
      const match = findLong(specs, name);
      if (match !== undefined && 'ambiguous' in match) {
        throw new UsageError(`unrecognized option '${word}'`, `option '${word}' is ambiguous; possibilities:${match.ambiguous.map((l) => ` '--${l}'`).join('')}`);
      }
      if (match !== undefined && 'help' in match) {
        if (eq >= 0) throw new UsageError(`unrecognized option '${word}'`, "option '--help' doesn't allow an argument");
        throw new HelpRequest();
      }
      if (!match) throw new UsageError(`unrecognized option '${word}'`, `unrecognized option '${word}'`);
      const { spec, full } = match;
      let value: string | undefined;
      if (spec.arg) {
        if (eq >= 0) value = word.slice(eq + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new UsageError(`missing argument for option '${word}'`, `option '--${full}' requires an argument`);
      } else if (eq >= 0) {
        if (!spec.optionalArg) throw new UsageError(`unrecognized option '${word}'`, `option '--${full}' doesn't allow an argument`);
        value = word.slice(eq + 1);
      }
      store(out, spec, value);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      for (let j = 1; j < word.length; j++) {
        const letter = word[j] as string;
        const spec = specs.find((s) => s.short === letter);
        // Every qemu-img command's getopt string has h (help).
        if (!spec && letter === 'h' && qemuLongs) throw new HelpRequest();
        if (!spec) throw new UsageError(`unrecognized option '${word}'`, `invalid option -- '${letter}'`);
        if (!spec.arg) {
          store(out, spec, undefined);
          continue;
        }
        let value: string | undefined;
        if (j + 1 < word.length) value = word.slice(j + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new UsageError(`missing argument for option '-${letter}'`, `option requires an argument -- '${letter}'`);
        store(out, spec, value);
        break;
      }
      continue;
    }
    out.operands.push(word);
    if (stopAtOperand) {
      out.operands.push(...argv.slice(i + 1));
      break;
    }
  }
  return out;
}

/** The last value of an option, if given. */
export function last(args: ParsedArgs, key: string): string | undefined {
  const v = args.values.get(key);
  return v?.[v.length - 1];
}

/**
 * The `-o` values given, each checked as qemu-img's accumulate_options
 * does: not empty, not starting with a comma, not ending in an odd number
 * of commas (a dangling escape).
 *
 * @throws {InvalidArgumentError} "Invalid option list: X"
 */
export function optionLists(args: ParsedArgs, key = 'options'): string[] {
  const lists = args.values.get(key) ?? [];
  for (const text of lists) {
    const trailing = text.length - text.replace(/,+$/, '').length;
    if (text === '' || text.startsWith(',') || trailing % 2 === 1) throw new InvalidArgumentError(`Invalid option list: ${text}`);
  }
  return lists;
}
