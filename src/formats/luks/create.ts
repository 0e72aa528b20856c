/**
 * Creating a luks image (qemu's block_crypto_co_create_opts_luks): a LUKS1
 * header with keyslot 0 holding the `key-secret` passphrase, the other
 * seven slots' material areas reserved, then the payload, left sparse.
 */
import { InvalidArgumentError, UnsupportedError } from '../../core/errors.js';
import { newLuksHeader, storeLuksKey, writeLuksHeader } from '../crypto/luks-block.js';
import { luksCreateOptions, LUKS_OPTION_SPECS } from '../crypto/luks-options.js';
import { LUKS_SECTOR } from '../crypto/luks-sector.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { storeArea } from './image.js';

/**
 * qemu's list: `size` first, then the LUKS options. `preallocation` is the
 * file protocol's option, which qemu's luks create takes over (metadata
 * means off there); hidden so `-o help` lists only the format's own.
 */
export const LUKS_CREATE_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  ...LUKS_OPTION_SPECS,
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off, falloc, full)', hidden: true },
];

const PREALLOC_MODES = ['off', 'metadata', 'falloc', 'full'];

/** Writes a new luks image of `request.size` bytes onto `store`. */
export async function createLuks(store: ByteStore, request: CreateRequest): Promise<void> {
  const prealloc = String(request.options.get('preallocation') ?? 'off');
  if (!PREALLOC_MODES.includes(prealloc)) throw new InvalidArgumentError(`invalid parameter value: ${prealloc}`);
  const { format, password } = luksCreateOptions(request.options, request.secrets);
  const { header, key } = await newLuksHeader(format);
  const payload = header.payloadOffset * LUKS_SECTOR;
  const area = storeArea(store, payload);
  await storeLuksKey(area, header, 0, key, password, format.iterTime);
  await writeLuksHeader(area, header);
  await store.truncate(payload + request.size);
  if ((prealloc === 'falloc' || prealloc === 'full') && request.size > 0) {
    if (!store.preallocate) throw new UnsupportedError(`Unsupported preallocation mode: ${prealloc}`);
    await store.preallocate(payload, request.size, prealloc);
  }
}
