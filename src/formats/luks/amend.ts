/** `amend` of a luks image: keyslot management (see crypto/luks-keyslots.ts). */
import type { Secrets } from '../../core/secrets.js';
import type { LuksArea } from '../crypto/luks-block.js';
import type { LuksHeader } from '../crypto/luks-header.js';
import { amendLuksKeyslots, LUKS_AMEND_SPECS } from '../crypto/luks-keyslots.js';
import type { ImageAmender, OptionSpec } from '../driver.js';

/** The `-o` options `amend` takes for luks. */
export const LUKS_AMEND_OPTIONS: readonly OptionSpec[] = LUKS_AMEND_SPECS;

/** The amender of an unlocked, writable luks image. */
export function luksAmender(area: LuksArea, header: LuksHeader, key: Uint8Array, secrets: Secrets | undefined): ImageAmender {
  return {
    options: LUKS_AMEND_OPTIONS,
    amend: async (r) => {
      await amendLuksKeyslots(area, header, key, r.values, r.force, secrets);
    },
  };
}
