/**
 * luks: LUKS1 volumes as QEMU reads and writes them (block/crypto.c,
 * crypto/block-luks.c), cryptography through node:crypto. This file
 * wires the parts together; the LUKS machinery shared with qcow2 lives
 * in ../crypto.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { cipherAlgValue, CIPHER_MODES, enumValue, masterKeyBytes } from '../crypto/luks-algs.js';
import { luksHeaderBytes } from '../crypto/luks-block.js';
import type { FormatDriver, MeasureResult, MeasureSource, OptionValue } from '../driver.js';
import { LUKS_AMEND_OPTIONS } from './amend.js';
import { createLuks, LUKS_CREATE_OPTIONS } from './create.js';
import { LUKS_RUNTIME_OPTIONS, openLuks } from './image.js';
import { probeLuks } from './probe.js';

/** The luks format driver. */
export const luksDriver: FormatDriver = {
  name: 'luks',
  createOptions: LUKS_CREATE_OPTIONS,
  runtimeOptions: LUKS_RUNTIME_OPTIONS,
  amendOptions: LUKS_AMEND_OPTIONS,
  probe: probeLuks,
  open: openLuks,
  create: createLuks,
  measure: measureLuks,
};

/** qemu's block_crypto_measure: the header the options make plus the whole virtual size, allocated or not. */
function measureLuks(size: number, o: ReadonlyMap<string, OptionValue>, source?: MeasureSource): Promise<MeasureResult> {
  if (!o.has('key-secret')) return Promise.reject(new InvalidArgumentError("Parameter 'key-secret' is required for cipher"));
  const alg = cipherAlgValue(String(o.get('cipher-alg') ?? 'aes-256'));
  const mode = enumValue(CIPHER_MODES, 'cipher-mode', String(o.get('cipher-mode') ?? 'xts'));
  const total = luksHeaderBytes(masterKeyBytes(alg, mode)) + (source ? source.virtualSize : size);
  return Promise.resolve({ required: total, fullyAllocated: total });
}
