/**
 * Keyslot management (qemu's qcrypto_block_luks_amend_options): adding a
 * passphrase to a free slot (or, with --force, over an active one) and
 * erasing slots, by index or by the passphrase they hold, with qemu's
 * checks and messages. Shared by `amend` of luks and of qcow2+luks.
 */
import { nodeCrypto } from '../../core/random.js';

import { InvalidArgumentError } from '../../core/errors.js';
import type { OptionValue } from '../../core/options.js';
import { lookupSecretText, type Secrets } from '../../core/secrets.js';
import { LUKS_DEFAULT_ITER_TIME, storeLuksKey, unlockSlot, writeLuksHeader, type LuksArea } from './luks-block.js';
import { LUKS_SALT_BYTES, LUKS_SLOTS, materialBytes, type LuksHeader } from './luks-header.js';
import { LUKS_SECTOR } from './luks-sector.js';

/** qemu overwrites an erased slot's material this many times (QCRYPTO_BLOCK_LUKS_ERASE_ITERATIONS). */
const ERASE_PASSES = 40;

/** The amend options without prefix (qemu's list order for `-o help`). */
export const LUKS_AMEND_SPECS = [
  { name: 'state', type: 'string', help: 'Select new state of affected keyslots (active/inactive)' },
  { name: 'keyslot', type: 'number', help: 'Select a single keyslot to modify explicitly' },
  { name: 'old-secret', type: 'string', help: 'Select all keyslots that match this password' },
  { name: 'new-secret', type: 'string', help: 'New secret to set in the matching keyslots. Empty string to erase' },
  { name: 'iter-time', type: 'number', help: 'Time to spend in PBKDF in milliseconds' },
] as const;

/** What one amend asks for, typed. */
interface KeyslotRequest {
  readonly active: boolean;
  readonly keyslot: number | undefined;
  readonly oldSecret: string | undefined;
  readonly newSecret: string | undefined;
  readonly iterTime: number;
  readonly force: boolean;
}

function request(values: ReadonlyMap<string, OptionValue>, force: boolean, prefix: string): KeyslotRequest {
  const get = (k: string): OptionValue | undefined => values.get(prefix + k);
  const state = get('state');
  // qemu re-reads the options without their prefix, so messages name `state` for qcow2 too.
  if (state === undefined) throw new InvalidArgumentError("Parameter 'state' is missing");
  if (state !== 'active' && state !== 'inactive') throw new InvalidArgumentError(`Parameter 'state' does not accept value '${String(state)}'`);
  const slot = get('keyslot');
  const keyslot = slot === undefined ? undefined : Number(slot);
  if (keyslot !== undefined && (!Number.isInteger(keyslot) || keyslot < 0 || keyslot >= LUKS_SLOTS)) {
    const shown = keyslot < 0 && keyslot >= -(2 ** 31) ? keyslot + 2 ** 32 : keyslot;
    throw new InvalidArgumentError(`Invalid keyslot ${shown} specified, must be between 0 and ${LUKS_SLOTS - 1}`);
  }
  const text = (k: string): string | undefined => (get(k) === undefined ? undefined : String(get(k)));
  const iter = get('iter-time');
  return { active: state === 'active', keyslot, oldSecret: text('old-secret'), newSecret: text('new-secret'), iterTime: typeof iter === 'number' ? iter : LUKS_DEFAULT_ITER_TIME, force };
}

/** Applies one amend to the header and material in `area` (the master key unlocked the image). */
export async function amendLuksKeyslots(
  area: LuksArea, h: LuksHeader, key: Uint8Array, values: ReadonlyMap<string, OptionValue>, force: boolean, secrets: Secrets | undefined, prefix = '',
): Promise<void> {
  const r = request(values, force, prefix);
  if (r.active) await activate(area, h, key, r, secrets);
  else await erase(area, h, r, secrets);
}

async function activate(area: LuksArea, h: LuksHeader, key: Uint8Array, r: KeyslotRequest, secrets: Secrets | undefined): Promise<void> {
  if (r.oldSecret !== undefined) throw new InvalidArgumentError("'old-secret' must not be given when activating keyslots");
  if (r.newSecret === undefined) throw new InvalidArgumentError("'new-secret' is required to activate a keyslot");
  let slot = r.keyslot;
  if (slot === undefined) {
    slot = h.slots.findIndex((s) => !s.active);
    if (slot < 0) throw new InvalidArgumentError("Can't add a keyslot - all keyslots are in use");
  } else if (h.slots[slot]!.active && !r.force) {
    throw new InvalidArgumentError(`Refusing to overwrite active keyslot ${slot} - please erase it first`);
  }
  const password = new TextEncoder().encode(lookupSecretText(secrets, r.newSecret));
  await storeLuksKey(area, h, slot, key, password, r.iterTime);
  await writeLuksHeader(area, h);
}

async function erase(area: LuksArea, h: LuksHeader, r: KeyslotRequest, secrets: Secrets | undefined): Promise<void> {
  if (r.newSecret !== undefined) throw new InvalidArgumentError("'new-secret' must not be given when erasing keyslots");
  if (r.keyslot === undefined && r.oldSecret === undefined) {
    throw new InvalidArgumentError('To erase keyslot(s), either explicit keyslot index or the password currently contained in them must be given');
  }
  const password = r.oldSecret === undefined ? undefined : new TextEncoder().encode(lookupSecretText(secrets, r.oldSecret));
  const active = h.slots.flatMap((s, i) => (s.active ? [i] : []));
  let targets: number[];
  if (r.keyslot !== undefined) {
    if (!h.slots[r.keyslot]!.active) throw new InvalidArgumentError(`Given keyslot ${r.keyslot} is already erased (inactive) `);
    if (password && !(await unlockSlot(area, h, r.keyslot, password))) {
      throw new InvalidArgumentError(`Given keyslot ${r.keyslot} doesn't contain the given old password for erase operation`);
    }
    targets = [r.keyslot];
  } else {
    targets = [];
    for (const i of active) if (await unlockSlot(area, h, i, password!)) targets.push(i);
    if (targets.length === 0) throw new InvalidArgumentError('No keyslots match given (old) password for erase operation');
  }
  if (!r.force && targets.length === active.length) {
    throw new InvalidArgumentError(r.keyslot !== undefined
      ? `Attempt to erase the only active keyslot ${targets[0]} which will erase all the data in the image irreversibly - refusing operation`
      : 'All the active keyslots match the (old) password that was given and erasing them will erase all the data in the image irreversibly - refusing operation');
  }
  for (const i of targets) await eraseSlot(area, h, i);
}

/** Overwrites a slot's material with random bytes, then marks it inactive in the header. */
async function eraseSlot(area: LuksArea, h: LuksHeader, i: number): Promise<void> {
  const slot = h.slots[i]!;
  const garbage = new Uint8Array(materialBytes(h.keyBytes, slot.stripes));
  for (let pass = 0; pass < ERASE_PASSES; pass++) {
    nodeCrypto().randomFillSync(garbage);
    await area.write(slot.keyOffset * LUKS_SECTOR, garbage);
  }
  h.slots[i] = { ...slot, active: false, iterations: 0, salt: new Uint8Array(LUKS_SALT_BYTES) };
  await writeLuksHeader(area, h);
}
