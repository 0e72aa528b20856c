/**
 * Creating a luks image (qemu's block_crypto_co_create_opts_luks): a LUKS1
 * header with keyslot 0 holding the `key-secret` passphrase, the other
 * seven slots' material areas reserved, then the payload, left sparse.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { newLuksHeader, storeLuksKey, writeLuksHeader } from '../crypto/luks-block.js';
import { luksCreateOptions, LUKS_OPTION_SPECS } from '../crypto/luks-options.js';
import { LUKS_SECTOR } from '../crypto/luks-sector.js';
import type { ByteStore, CreateRequest, OptionSpec } from '../driver.js';
import { storeArea } from './image.js';

/** qemu's list: `size` first, then the LUKS options. */
export const LUKS_CREATE_OPTIONS: readonly OptionSpec[] = [{ name: 'size', type: 'size', help: 'Virtual disk size' }, ...LUKS_OPTION_SPECS];

/** Writes a new luks image of `request.size` bytes onto `store`. */
export async function createLuks(store: ByteStore, request: CreateRequest): Promise<void> {
  const { format, password } = luksCreateOptions(request.options, request.secrets);
  if (format.iterTime < 0) throw new InvalidArgumentError(`PBKDF iterations ${format.iterTime} too large to scale: Numerical result out of range`);
  const { header, key } = await newLuksHeader(format);
  const payload = header.payloadOffset * LUKS_SECTOR;
  const area = storeArea(store, payload);
  await storeLuksKey(area, header, 0, key, password, format.iterTime);
  await writeLuksHeader(area, header);
  await store.truncate(payload + request.size);
}
