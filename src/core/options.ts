/**
 * `-o key=value,key2=value2` option strings as qemu-img reads them (QemuOpts):
 * `,,` escapes a comma, a bare `key` means `key=on`, a bare `noKEY` means
 * `KEY=off`, and `help` or `?` asks for the option list.
 */
import { InvalidArgumentError } from './errors.js';
import { parseSizeBig, withoutSizeWarnings } from './sizes.js';

/** The value types QemuOpts knows. */
export type OptionType = 'string' | 'size' | 'number' | 'bool';

/** One option a driver accepts on create (drives `-o help` and validation). */
export interface OptionSpec {
  /** The key as written after `-o`. */
  readonly name: string;
  /** How the value is parsed. */
  readonly type: OptionType;
  /** The one-line help text qemu-img prints. */
  readonly help: string;
  /** Default value, as a string; printed in the `Formatting` line when set. */
  readonly default?: string;
  /** Hidden options are accepted but not listed by `-o help`. */
  readonly hidden?: boolean;
}

/** Parsed option values, typed by their spec. */
export type OptionValue = string | number | boolean;

/** One `key=value` pair in the order it was written. */
export interface RawOption {
  /** The option name. */
  readonly key: string;
  /** Its value, unparsed. */
  readonly value: string;
}

/** Splits an option string at unescaped commas. */
export function splitEscaped(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ',') {
      if (text[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

/**
 * Parses one or more `-o` strings into ordered key/value pairs.
 *
 * @example
 * ```ts
 * parseOptionString('size=1G,backing_file=a,,b'); // [{key:'size',value:'1G'},{key:'backing_file',value:'a,b'}]
 * ```
 */
export function parseOptionString(text: string): RawOption[] {
  const out: RawOption[] = [];
  for (const part of splitEscaped(text)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq >= 0) out.push({ key: part.slice(0, eq), value: part.slice(eq + 1) });
    else if (part !== 'help' && part !== '?' && part.startsWith('no')) out.push({ key: part.slice(2), value: 'off' });
    else out.push({ key: part, value: 'on' });
  }
  return out;
}

/** True when the option string asks for help (`-o help` or `-o ?`). */
export function isHelpRequest(options: readonly RawOption[]): boolean {
  return options.some((o) => (o.key === 'help' || o.key === '?') && o.value === 'on');
}

/** Parses a boolean as QEMU does (`on/off`, `yes/no`, `true/false`, `y/n`). */
function parseBool(name: string, value: string): boolean {
  if (['on', 'yes', 'true', 'y'].includes(value)) return true;
  if (['off', 'no', 'false', 'n'].includes(value)) return false;
  throw new InvalidArgumentError(`Parameter '${name}' expects 'on' or 'off'`);
}

/**
 * qemu_strtou64 with base 0, as QemuOpts reads numbers: leading blanks, an
 * optional sign (a minus wraps around, as strtoull's does), then decimal,
 * `0x` hex or `0` octal digits, nothing after them.
 */
function parseU64(text: string): { ok: true; value: bigint; signed: bigint } | { ok: false; range: boolean } {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return { ok: false, range: false };
  const digits = m[2] as string;
  const magnitude = digits.length > 1 && /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  if (magnitude > 0xffffffffffffffffn) return { ok: false, range: true };
  const signed = m[1] === '-' ? -magnitude : magnitude;
  return { ok: true, value: BigInt.asUintN(64, signed), signed };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function parseOne(spec: OptionSpec, value: string): OptionValue {
  switch (spec.type) {
    case 'string':
      return value;
    case 'bool':
      return parseBool(spec.name, value);
    case 'number': {
      const r = parseU64(value);
      if (!r.ok && r.range) throw new InvalidArgumentError(`Value '${value}' is too large for parameter '${spec.name}'`);
      if (!r.ok) throw new InvalidArgumentError(`Parameter '${spec.name}' expects a number`);
      // Drivers read numbers as QAPI integers (qemu_strtoi64 of the same text): NaN when the text is outside int64.
      return r.signed < INT64_MIN || r.signed > INT64_MAX ? NaN : Number(r.signed);
    }
    case 'size': {
      const r = parseSizeBig(value);
      if (!r.ok && r.reason === 'range') throw new InvalidArgumentError(`Value '${value}' is out of range for parameter '${spec.name}'`);
      if (!r.ok) {
        throw new InvalidArgumentError(`Parameter '${spec.name}' expects a non-negative number below 2^64`, {
          hint: 'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.',
        });
      }
      if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new InvalidArgumentError(`Parameter '${spec.name}' is larger than vdisk supports (2^53 - 1)`);
      }
      return Number(r.value);
    }
  }
}

/**
 * Checks raw pairs against a driver's specs and types them. Later keys
 * override earlier ones, as repeated `-o` options do in qemu-img.
 *
 * @throws {InvalidArgumentError} "Invalid parameter 'x'" for unknown keys, typed-value errors
 */
export function typeOptions(specs: readonly OptionSpec[], raw: readonly RawOption[]): Map<string, OptionValue> {
  const out = new Map<string, OptionValue>();
  for (const { key, value } of raw) {
    const spec = specs.find((s) => s.name === key);
    if (!spec) throw new InvalidArgumentError(`Invalid parameter '${key}'`);
    out.set(key, parseOne(spec, value));
  }
  return out;
}

const TYPE_NAMES: Record<OptionType, string> = {
  string: 'str',
  size: 'size',
  number: 'num',
  bool: 'bool (on/off)',
};

/**
 * The option list `-o help` prints, in qemu-img 7.2's layout.
 *
 * @param title - `Supported raw options:` style heading
 */
export function formatOptionHelp(title: string, specs: readonly OptionSpec[]): string {
  const lines = [title];
  const visible = specs.filter((s) => !s.hidden).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const s of visible) lines.push(`  ${`${s.name}=<${TYPE_NAMES[s.type]}>`.padEnd(22)} - ${s.help}`);
  return lines.join('\n') + '\n';
}

/**
 * A value the user gave (as text) the way qemu-img prints it in the
 * `Formatting` line (qemu_opts_print): strings with commas doubled, sizes
 * and numbers as signed 64-bit integers, booleans exactly as written.
 */
export function printOptionValue(spec: OptionSpec, text: string): string {
  switch (spec.type) {
    case 'string':
      return text.replaceAll(',', ',,');
    case 'bool':
      return text;
    case 'size': {
      // Printed from a value already parsed (and reported): not reported again.
      const r = withoutSizeWarnings(() => parseSizeBig(text));
      return r.ok ? String(BigInt.asIntN(64, r.value)) : text;
    }
    case 'number': {
      const r = parseU64(text);
      return r.ok ? String(BigInt.asIntN(64, r.value)) : text;
    }
  }
}

/** The last text given for each key (later options override earlier ones). */
export function optionTexts(raw: readonly RawOption[]): Map<string, string> {
  return new Map(raw.map((o) => [o.key, o.value]));
}

/** A runtime option value typed as QemuOpts types it: sizes and numbers as unsigned 64-bit integers. */
export type QemuOptValue = string | boolean | bigint;

/**
 * Types one runtime option value (from `--image-opts` or `json:`) as
 * qemu's QemuOpts does, with its messages. Unlike `-o` values, sizes and
 * numbers may use the whole unsigned 64-bit range (qemu clamps cache sizes
 * rather than refusing them).
 *
 * @throws {InvalidArgumentError} `Parameter 'x' expects ...`, `Value 'v' is out of range for parameter 'x'`
 */
export function parseQemuOpt(name: string, type: OptionType, text: string): QemuOptValue {
  switch (type) {
    case 'string':
      return text;
    case 'bool':
      return parseBool(name, text);
    case 'number': {
      const n = parseU64(text);
      if (!n.ok && n.range) throw new InvalidArgumentError(`Value '${text}' is too large for parameter '${name}'`);
      if (!n.ok) throw new InvalidArgumentError(`Parameter '${name}' expects a number`);
      return n.value;
    }
    case 'size': {
      const r = parseSizeBig(text);
      if (r.ok) return r.value;
      if (r.reason === 'range') throw new InvalidArgumentError(`Value '${text}' is out of range for parameter '${name}'`);
      throw new InvalidArgumentError(`Parameter '${name}' expects a non-negative number below 2^64`, {
        hint: 'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.',
      });
    }
  }
}

/**
 * Types the runtime options a driver declares, from `[key, text]` pairs in
 * qemu's QDict order (so the first bad value is the one qemu names); keys
 * not in `specs` are skipped (the block layer reports those).
 */
export function typeQemuOpts(specs: readonly OptionSpec[], pairs: readonly (readonly [string, string])[]): Map<string, QemuOptValue> {
  const out = new Map<string, QemuOptValue>();
  for (const [key, text] of pairs) {
    const spec = specs.find((s) => s.name === key);
    if (spec) out.set(key, parseQemuOpt(key, spec.type, text));
  }
  return out;
}
