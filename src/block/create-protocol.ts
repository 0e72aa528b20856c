/**
 * Which create options a target's protocol takes, as qemu-img finds its
 * protocol driver (bdrv_find_protocol): a bare name that stats as a block or
 * character device is host_device's, `host_device:` and `host_cdrom:` names
 * and NBD exports are theirs; those protocols take only `size` and
 * `preallocation=off` (bdrv_create_opts_simple). Everything else is a file.
 */
import type { CreateProtocol } from '../formats/index.js';
import { stat } from '../io/fs-calls.js';
import type { OutputSpec } from './target.js';
import { networkScheme } from './network-stores.js';
import { protocolPrefix } from './protocol-name.js';

/** The create-option list of the protocol `output` is written through. */
export async function createProtocolOf(output: OutputSpec): Promise<CreateProtocol> {
  if (typeof output !== 'string') return output.device === true ? 'simple' : 'file';
  const scheme = networkScheme(output);
  if (scheme !== undefined) return scheme.startsWith('nbd') ? 'simple' : 'file';
  const prefix = protocolPrefix(output);
  if (prefix === 'host_device' || prefix === 'host_cdrom') return 'simple';
  if (prefix !== undefined) return 'file';
  try {
    const st = await stat(output);
    return st.isBlockDevice() || st.isCharacterDevice() ? 'simple' : 'file';
  } catch {
    return 'file';
  }
}
