/**
 * The VMDK text descriptor: parse (pure, bounded) and serialize exactly as
 * QEMU's vmdk_co_do_create writes it.
 */
import { decodeName, encodeName } from '../../core/byte-names.js';
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { LIMITS } from '../../core/limits.js';

/** Extent kinds vdisk reads. */
export type ExtentKind = 'FLAT' | 'SPARSE' | 'VMFS' | 'VMFSSPARSE' | 'ZERO';

/** One extent line. */
export interface ExtentLine {
  readonly access: 'RW' | 'RDONLY';
  readonly sectors: number;
  readonly kind: ExtentKind;
  /** File name as written (absent for ZERO). */
  readonly filename: string;
  /** Start of the extent's data in its file, in sectors (FLAT), 0 otherwise. */
  readonly offset: number;
}

/** A parsed descriptor. */
export interface Descriptor {
  /** Undefined when the descriptor has no CID line (callers refuse it). */
  readonly cid: number | undefined;
  readonly parentCid: number;
  readonly createType: string | undefined;
  readonly parentFileNameHint: string | undefined;
  readonly extents: readonly ExtentLine[];
}

/** createTypes whose descriptor lists its extents (QEMU's list plus VMFS variants of the same layout). */
const DESCRIPTOR_TYPES = new Set([
  'monolithicFlat',
  'vmfs',
  'vmfsSparse',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'vmfsThin',
  'vmfsPreallocated',
  'vmfsEagerZeroedThick',
]);

const EXTENT_KINDS = new Set<string>(['FLAT', 'SPARSE', 'VMFS', 'VMFSSPARSE', 'ZERO']);
const EXTENT_RE = /^(\S{1,10})\s+(\S+)\s+(\S{1,10})(?:\s+"([^"\r\n]*)"(?:\s+(\S+))?)?/;
const ACCESS = new Set(['RW', 'RDONLY', 'NOACCESS']);

/** Text of a descriptor region: up to the first NUL. */
export function descriptorText(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decodeName(bytes.subarray(0, nul < 0 ? bytes.length : nul));
}

function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

function parseHex32(value: string | undefined, what: string, file: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(?:0[xX])?([0-9a-fA-F]+)/.exec(value);
  if (!m?.[1]) throw new CorruptImageError(`Invalid ${what} '${value}' in VMDK descriptor`, { file });
  // sscanf %x keeps the low 32 bits of longer numbers
  return Number(BigInt('0x' + m[1]) & 0xffffffffn);
}

function invalidLine(line: string, file: string): CorruptImageError {
  return new CorruptImageError(`Invalid extent line: ${line}`, { file });
}

/** Parses one extent line, or returns undefined for lines that are not extents. */
function parseExtentLine(line: string, file: string): ExtentLine | undefined {
  const m = EXTENT_RE.exec(line.trim());
  if (!m) return undefined;
  const [, access = '', sectorsText = '', kind = '', name, offsetText] = m;
  if (!ACCESS.has(access)) return undefined;
  if (!/^\d+$/.test(sectorsText)) return undefined;
  if (name === undefined && kind !== 'ZERO') return undefined;
  // qemu takes an offset after the name for FLAT only: any other type with one (known or not) is a bad line.
  if (offsetText !== undefined && kind !== 'FLAT') throw invalidLine(line.trim(), file);
  if (!EXTENT_KINDS.has(kind)) {
    if (kind === 'SESPARSE') throw new UnsupportedError(`Unsupported extent type '${kind}' (seSparse extents are not supported)`, { file });
    throw new UnsupportedError(`Unsupported extent type '${kind}'`, { file });
  }
  if (access === 'NOACCESS') throw new UnsupportedError(`Extent access 'NOACCESS' is not supported: ${line.trim()}`, { file });
  const sectors = Number(sectorsText);
  if (!Number.isSafeInteger(sectors) || sectors > LIMITS.maxOffset / 512) throw invalidLine(line.trim(), file);
  let offset = 0;
  if (kind === 'FLAT') {
    if (offsetText === undefined || !/^\d+$/.test(offsetText)) throw invalidLine(line.trim(), file);
    offset = Number(offsetText);
    if (!Number.isSafeInteger(offset) || offset > LIMITS.maxOffset / 512) throw invalidLine(line.trim(), file);
  }
  // qemu skips a well-formed line of no sectors (what it writes for a 0-byte disk).
  if (sectors === 0) return undefined;
  const filename = name ?? '';
  if (encodeName(filename).length > LIMITS.vmdkMaxExtentNameBytes) throw invalidLine(line.trim(), file);
  if (kind !== 'ZERO' && filename === '') throw invalidLine(line.trim(), file);
  return { access: access as 'RW' | 'RDONLY', sectors, kind: kind as ExtentKind, filename, offset };
}

/**
 * Parses a descriptor's text. `embedded` descriptors (inside a sparse
 * extent) may not list other files; their extents are ignored. A
 * `descriptorFile`'s createType is checked first, as qemu does.
 *
 * @throws {CorruptImageError} for bad extent lines
 * @throws {UnsupportedError} for unknown extent types and descriptor file types
 */
export function parseDescriptor(text: string, file: string, descriptorFile = false): Descriptor {
  const values = new Map<string, string>();
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq > 0 && !/^\S+\s+\d+\s/.test(t)) {
      const key = t.slice(0, eq).trim();
      if (!values.has(key)) values.set(key, t.slice(eq + 1));
      continue;
    }
    lines.push(line);
  }
  // A descriptor file's type is checked before its extent lines are read (vmdk_open_desc_file).
  if (descriptorFile) checkCreateType(values.get('createType'), file);
  // No count limit, as in qemu: the descriptor's size (vmdkMaxDescriptorBytes) bounds it.
  const extents = lines.map((line) => parseExtentLine(line, file)).filter((e): e is ExtentLine => e !== undefined);
  const cid = parseHex32(values.get('CID'), 'CID', file);
  const parentCid = parseHex32(values.get('parentCID'), 'parentCID', file) ?? 0xffffffff;
  const ct = values.get('createType');
  const hint = values.get('parentFileNameHint');
  const parent = hint === undefined ? undefined : unquote(hint);
  if (parent !== undefined && encodeName(parent).length > LIMITS.vmdkMaxParentNameBytes) {
    throw new CorruptImageError(`parentFileNameHint is longer than ${LIMITS.vmdkMaxParentNameBytes} bytes`, { file });
  }
  return { cid, parentCid, createType: ct === undefined ? undefined : unquote(ct), parentFileNameHint: parent === '' ? undefined : parent, extents };
}

/** Checks a stand-alone descriptor file's createType as QEMU's vmdk_open_desc_file does. */
export function checkDescriptorType(desc: Descriptor, file: string): string {
  return checkCreateType(desc.createType, file);
}

function checkCreateType(value: string | undefined, file: string): string {
  const createType = value === undefined ? undefined : unquote(value);
  if (createType === undefined) throw new CorruptImageError('invalid VMDK image descriptor', { file });
  if (!DESCRIPTOR_TYPES.has(createType)) throw new UnsupportedError(`Unsupported image type '${createType}'`, { file });
  return createType;
}

/** Replaces the CID value in descriptor text, keeping every other byte. */
export function replaceCid(text: string, cid: number): string {
  return text.replace(/^([ \t]*CID[ \t]*=[ \t]*)[0-9a-fA-F]+/m, `$1${cid.toString(16)}`);
}

/** What a new descriptor says (QEMU's desc_template). */
export interface DescriptorSpec {
  readonly cid: number;
  readonly parentCid: number;
  readonly createType: string;
  readonly parentFileNameHint?: string | undefined;
  /** Extent lines, each ending in a newline. */
  readonly extentLines: readonly string[];
  readonly hwVersion: string;
  readonly size: number;
  readonly adapterType: string;
  readonly toolsVersion: string;
}

/** The descriptor text QEMU writes. */
export function buildDescriptor(s: DescriptorSpec): string {
  const heads = s.adapterType === 'ide' ? 16 : 255;
  const cylinders = Math.floor(s.size / (63 * heads * 512));
  const parent = s.parentFileNameHint === undefined ? '' : `parentFileNameHint="${s.parentFileNameHint}"`;
  return (
    '# Disk DescriptorFile\n' +
    'version=1\n' +
    `CID=${s.cid.toString(16)}\n` +
    `parentCID=${s.parentCid.toString(16)}\n` +
    `createType="${s.createType}"\n` +
    parent +
    '\n' +
    '# Extent description\n' +
    s.extentLines.join('') +
    '\n' +
    '# The Disk Data Base\n' +
    '#DDB\n' +
    '\n' +
    `ddb.virtualHWVersion = "${s.hwVersion}"\n` +
    `ddb.geometry.cylinders = "${cylinders}"\n` +
    `ddb.geometry.heads = "${heads}"\n` +
    'ddb.geometry.sectors = "63"\n' +
    `ddb.adapterType = "${s.adapterType}"\n` +
    `ddb.toolsVersion = "${s.toolsVersion}"\n`
  );
}

/** One extent line as QEMU writes it. */
export function extentLine(flat: boolean, size: number, basename: string): string {
  const sectors = Math.ceil(size / 512);
  return flat ? `RW ${sectors} FLAT "${basename}" 0\n` : `RW ${sectors} SPARSE "${basename}"\n`;
}

/** The descriptor's CID, required as QEMU's vmdk_read_cid requires it. */
export function requireCid(desc: Descriptor, file: string): number {
  if (desc.cid === undefined) throw new CorruptImageError('VMDK descriptor has no CID', { file });
  return desc.cid;
}
