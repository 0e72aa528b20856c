import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import type { OptionSpec, OptionValue } from './driver.js';

/**
 * The `file` protocol's create options, which qemu-img appends to every
 * format's list (shown by `-o help` when a file name is given), in
 * file-posix's order: the `Formatting ...` line prints them so.
 */
export const FILE_PROTOCOL_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'nocow', type: 'bool', help: 'Turn off copy-on-write (valid only on btrfs)' },
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off, falloc, full)' },
  { name: 'extent_size_hint', type: 'size', help: 'Extent size hint for the image file, 0 to disable' },
];

/**
 * The create options of protocols that cannot make files (qemu's
 * bdrv_create_opts_simple: host_device, host_cdrom, nbd): a device or an
 * export is written where it is, so `nocow` and `extent_size_hint` are
 * unknown parameters there and only `off` preallocates.
 */
export const SIMPLE_PROTOCOL_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off)' },
];

/** Which of the two option lists a create target's protocol has. */
export type CreateProtocol = 'file' | 'simple';

/** The preallocation modes QEMU's option parser knows (PreallocMode). */
const PREALLOC_MODES = ['off', 'metadata', 'falloc', 'full'];
/** The modes the file protocol can create with. */
const FILE_PREALLOC_MODES = ['off', 'falloc', 'full'];

/**
 * The file protocol's checks of its create options, in file-posix's order
 * (raw_co_create_opts, raw_co_create): the mode must parse, the extent size
 * hint fit 32 bits, and the mode be one a file can be made with. `own`
 * names options the format defines itself (qcow2's preallocation), which
 * the format checks instead. The `simple` protocols (devices, exports) check
 * only that the mode parses and is `off` (bdrv_co_create_opts_simple).
 *
 * @throws {InvalidArgumentError} "invalid parameter value: X", "Extent size hint is too large"
 * @throws {UnsupportedError} "Unsupported preallocation mode: metadata"; simple: "Unsupported preallocation mode 'full'"
 */
export function checkProtocolCreateOptions(values: ReadonlyMap<string, OptionValue>, own: ReadonlySet<string>, protocol: CreateProtocol = 'file'): void {
  const prealloc = own.has('preallocation') ? undefined : values.get('preallocation');
  if (protocol === 'simple') return checkSimplePreallocation(prealloc === undefined ? 'off' : String(prealloc));
  if (prealloc !== undefined && !PREALLOC_MODES.includes(String(prealloc))) throw new InvalidArgumentError(`invalid parameter value: ${String(prealloc)}`);
  const hint = own.has('extent_size_hint') ? undefined : values.get('extent_size_hint');
  if (typeof hint === 'number' && hint > 0xffffffff) throw new InvalidArgumentError('Extent size hint is too large');
  if (prealloc !== undefined && !FILE_PREALLOC_MODES.includes(String(prealloc))) throw new UnsupportedError(`Unsupported preallocation mode: ${String(prealloc)}`);
}

/**
 * A device's or an export's preallocation (bdrv_co_create_opts_simple): the
 * mode must parse, and only `off` is possible.
 *
 * @throws {InvalidArgumentError} "invalid parameter value: X"
 * @throws {UnsupportedError} "Unsupported preallocation mode 'full'"
 */
export function checkSimplePreallocation(mode: string, file?: string): void {
  if (!PREALLOC_MODES.includes(mode)) throw new InvalidArgumentError(`invalid parameter value: ${mode}`, { file });
  if (mode !== 'off') throw new UnsupportedError(`Unsupported preallocation mode '${mode}'`, { file });
}
