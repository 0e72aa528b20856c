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

function findLong(specs: readonly OptSpec[], name: string): OptSpec | undefined {
  const exact = specs.find((s) => s.long?.includes(name));
  if (exact) return exact;
  const prefixed = specs.filter((s) => s.long?.some((l) => l.startsWith(name)));
  return prefixed.length === 1 ? prefixed[0] : undefined;
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
      const spec = findLong(specs, name);
      if (!spec) throw new UsageError(`unrecognized option '${word}'`, `unrecognized option '${word}'`);
      let value: string | undefined;
      if (spec.arg) {
        if (eq >= 0) value = word.slice(eq + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new UsageError(`missing argument for option '${word}'`, `option '${word}' requires an argument`);
      } else if (eq >= 0) {
        if (!spec.optionalArg) throw new UsageError(`unrecognized option '${word}'`, `option '--${name}' doesn't allow an argument`);
        value = word.slice(eq + 1);
      }
      store(out, spec, value);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      for (let j = 1; j < word.length; j++) {
        const letter = word[j] as string;
        const spec = specs.find((s) => s.short === letter);
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
