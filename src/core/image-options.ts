/**
 * Image names given as options, the two ways qemu-img takes them on the
 * command line: a `json:{...}` file name, and an `--image-opts` string
 * (`driver=qcow2,file.filename=disk.qcow2`). Both become the same flat
 * option dictionary (dotted keys, qemu's QDict order), which the block
 * layer then opens. Pure functions, reachable by fuzzers without files.
 */
import { InvalidArgumentError } from './errors.js';
import { flatten, QDict, toQDictValue } from './qdict.js';
import { parseQemuJson } from './qemu-json.js';

/** A parsed image name: the text as the user wrote it (for messages) and its flat options. */
export interface ImageOptions {
  /** The original text (`json:{...}` or the `--image-opts` string). */
  readonly text: string;
  /** Flat option dictionary (`file.filename`, `driver`, ...). */
  readonly options: QDict;
  /** Deprecation warnings qemu prints while parsing (short-form boolean flags). */
  readonly warnings: readonly string[];
}

/** True for a file name qemu reads as JSON options. */
export function isJsonName(name: string): boolean {
  return name.startsWith('json:');
}

/**
 * Parses a `json:` file name as qemu's parse_json_filename: one JSON
 * object, flattened. (`open` and every job accept `json:` paths directly;
 * this is for checking a name before opening it.)
 *
 * @example
 * ```ts
 * const spec = parseJsonName('json:{"driver":"raw","offset":512,"file":{"filename":"disk.img"}}');
 * spec.options.get('file.filename'); // 'disk.img'
 * ```
 * @throws {InvalidArgumentError} `Could not parse the JSON options: ...`, `Invalid JSON object given`
 */
export function parseJsonName(text: string): ImageOptions {
  let value;
  try {
    value = parseQemuJson(text.slice('json:'.length));
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`Could not parse the JSON options: ${err.message}`, { cause: err });
    throw err;
  }
  const dict = toQDictValue(value);
  if (!(dict instanceof QDict)) throw new InvalidArgumentError('Invalid JSON object given');
  return { text, options: flatten(dict), warnings: [] };
}

/** Reads a value up to the next single comma; `,,` is a literal comma. */
function readValue(text: string, from: number): { value: string; end: number } {
  let value = '';
  let i = from;
  while (i < text.length) {
    if (text[i] === ',') {
      if (text[i + 1] !== ',') break;
      i++;
    }
    value += text[i];
    i++;
  }
  return { value, end: i };
}

/**
 * One parameter at `at`, as qemu's get_opt_name_value: `name=value`, or a
 * bare word — the implied first key's value (commas escaped) when
 * `implied`, else a flag name (up to the next comma).
 */
function nextParam(text: string, at: number, implied: boolean): { name: string | undefined; value: string; next: number } {
  let len = 0;
  while (at + len < text.length && text[at + len] !== '=' && text[at + len] !== ',') len++;
  const skipComma = (i: number): number => (i < text.length ? i + 1 : i);
  if (text[at + len] === '=') {
    const { value, end } = readValue(text, at + len + 1);
    return { name: text.slice(at, at + len), value, next: skipComma(end) };
  }
  if (implied) {
    const { value, end } = readValue(text, at);
    return { name: undefined, value, next: skipComma(end) };
  }
  return { name: undefined, value: text.slice(at, at + len), next: skipComma(at + len) };
}

/** qemu's id_wellformed: a letter, then letters, digits, `-`, `.`, `_`. */
function isIdentifier(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

/**
 * Parses an `--image-opts` string as qemu-img does (QemuOpts with `file` as
 * the implied first key): `a=b,c=d`, `,,` for a comma inside a value, a
 * bare first word names `file`, a later bare `flag` means `flag=on`
 * (`noflag` means `flag=off`; both deprecated, with qemu's warning), a
 * repeated key keeps its last value, and `id` must be an identifier.
 * The result can be given to `open` and every job in place of a path.
 *
 * @example
 * ```ts
 * await using dev = await open(parseImageOptsString('driver=qcow2,file.filename=disk.qcow2,l2-cache-size=1M'));
 * ```
 * @throws {InvalidArgumentError} `Parameter 'id' expects an identifier`
 */
export function parseImageOptsString(text: string): ImageOptions {
  const params: { key: string; value: string; flag?: string | undefined }[] = [];
  for (let at = 0, first = true; at < text.length; first = false) {
    const { name, value, next } = nextParam(text, at, first);
    at = next;
    if (name !== undefined) params.push({ key: name, value });
    else if (first) params.push({ key: 'file', value });
    else if (value.startsWith('no')) params.push({ key: value.slice(2), value: 'off', flag: value });
    else params.push({ key: value, value: 'on', flag: value === 'help' || value === '?' ? undefined : value });
  }
  // qemu takes the first `id` as the options' identifier and puts it first.
  const id = params.find((p) => p.key === 'id');
  if (id && !isIdentifier(id.value)) {
    throw new InvalidArgumentError("Parameter 'id' expects an identifier", {
      hint: "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.",
      data: { kind: 'image-opts-syntax' },
    });
  }
  const options = new QDict();
  const warnings: string[] = [];
  if (id) options.set('id', id.value);
  for (const p of params) {
    if (p.flag !== undefined) warnings.push(`short-form boolean option '${p.flag}' deprecated\nPlease use ${p.key}=${p.value} instead`);
    if (p.key !== 'id') options.set(p.key, p.value);
  }
  return { text, options, warnings };
}
