/**
 * The option space the sweep draws from: each format's create options as
 * qemu-img 7.2 lists them (`qemu-img create -f FMT -o help x`, reference
 * §2.2), each with valid and invalid values, and the sizes to try.
 */

/** One `-o` option with values qemu accepts and values it should refuse. */
export interface OptionValues {
  readonly name: string;
  readonly valid: readonly string[];
  readonly invalid: readonly string[];
}

const o = (name: string, valid: string[], invalid: string[] = []): OptionValues => ({ name, valid, invalid });

const BOOL = ['on', 'off'];
const PREALLOC = o('preallocation', ['off', 'falloc', 'full'], ['metadata', 'bogus']);
/** Protocol options every format accepts through its file node. */
const FILE_OPTS = [o('nocow', BOOL, ['bogus']), o('extent_size_hint', ['0', '1M', '256M'], ['5G', '-1', 'x'])];

/** Create options per format (backing_file and data_file are drawn separately: they name files). */
export const CREATE_OPTIONS: Readonly<Record<string, readonly OptionValues[]>> = {
  raw: [PREALLOC, ...FILE_OPTS],
  qcow2: [
    o('compat', ['0.10', '1.1', 'v2', 'v3'], ['1.0', 'bogus', '']),
    o('cluster_size', ['512', '1k', '4k', '64k', '2M'], ['256', '4M', '3000', '0', '1x']),
    o('refcount_bits', ['1', '2', '4', '8', '16', '32', '64'], ['0', '3', '128', 'abc']),
    o('lazy_refcounts', [...BOOL, 'true'], ['bogus']),
    o('extended_l2', BOOL, ['bogus']),
    o('compression_type', ['zlib', 'zstd'], ['lz4', '']),
    o('preallocation', ['off', 'metadata', 'falloc', 'full'], ['bogus']),
    o('encryption', ['off'], ['on']),
    ...FILE_OPTS,
  ],
  vmdk: [
    o('subformat', ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'], ['bogus', 'vmfs']),
    o('adapter_type', ['ide', 'lsilogic', 'buslogic', 'legacyESX'], ['scsi']),
    o('compat6', BOOL, ['bogus']),
    o('hwversion', ['4', '6', 'undefined', '21'], ['']),
    o('toolsversion', ['1234', '2147483647'], []),
    o('zeroed_grain', BOOL, ['bogus']),
    PREALLOC,
    ...FILE_OPTS,
  ],
  vpc: [o('subformat', ['dynamic', 'fixed'], ['bogus', 'differencing']), o('force_size', BOOL, ['bogus']), PREALLOC, ...FILE_OPTS],
  vhdx: [
    o('subformat', ['dynamic', 'fixed'], ['bogus']),
    o('log_size', ['1M', '2M', '8M'], ['0', '1000', '1536k']),
    o('block_size', ['0', '1M', '8M', '32M', '256M'], ['512M', '3M', '1000', '512k']),
    o('block_state_zero', BOOL, ['bogus']),
    PREALLOC,
    ...FILE_OPTS,
  ],
  vdi: [o('static', BOOL, ['bogus']), PREALLOC, o('cluster_size', [], ['1M']), ...FILE_OPTS],
  qed: [o('cluster_size', ['4k', '64k', '1M'], ['1k', '3000']), o('table_size', ['1', '4', '16'], ['0', '32']), PREALLOC],
  qcow: [o('encryption', ['off'], ['on']), PREALLOC],
  parallels: [o('cluster_size', ['64k', '1M', '4M'], ['0', '3000']), PREALLOC],
  luks: [o('cipher-alg', ['aes-256', 'aes-128'], ['bogus']), o('hash-alg', ['sha256', 'sha1'], ['md4x']), o('iter-time', ['10'], ['-5']), PREALLOC],
};

/** Formats vdisk creates and opens today. */
export const VDISK_FORMATS = ['raw', 'qcow2', 'vmdk', 'vpc', 'vhdx', 'vdi'] as const;
/** Formats qemu-img creates that vdisk does not (yet). */
export const OTHER_FORMATS = ['qed', 'qcow', 'parallels', 'luks'] as const;
export const ALL_FORMATS: readonly string[] = [...VDISK_FORMATS, ...OTHER_FORMATS];

/** File name extension of an output in `format`. */
export function ext(format: string): string {
  return ({ raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vpc: 'vhd', vhdx: 'vhdx', vdi: 'vdi', qed: 'qed', qcow: 'qcow', parallels: 'hds', luks: 'luks' } as Record<string, string>)[format] ?? 'img';
}

/** Sizes valid for every format (within its limits). */
export const SMALL_SIZES = ['0', '1', '511', '512', '1000001', '4M', '1024k', '3G'];
/** Large sparse sizes: cheap for sparse formats, limits for others. */
export const BIG_SIZES = ['1T', '2040G', '64T', '65T', '1P'];
/** Sizes no format accepts. */
export const BAD_SIZES = ['-1', 'abc', '1.5', '1x', '16E', '9223372036854775807', '9223372036854775808', '0x100', '+4M'];

/** Formats whose metadata grows with the virtual size enough that big sizes are a cost, not a test (and vdisk cannot open them). */
export const NO_BIG: ReadonlySet<string> = new Set(['qcow', 'qed', 'parallels', 'luks']);

/** The fixed arguments a create/convert/measure of `format` needs (a LUKS secret). */
export function formatPrelude(format: string): string[] {
  return format === 'luks' ? ['--object', 'secret,id=sec0,data=sweep'] : [];
}

/** Options a `format` output always needs. */
export function requiredOptions(format: string): string {
  return format === 'luks' ? 'key-secret=sec0,iter-time=10' : '';
}

/** Joins option strings, skipping empty ones. */
export function joinOpts(...parts: string[]): string {
  return parts.filter(Boolean).join(',');
}
