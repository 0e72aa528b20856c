/**
 * A LUKS1 volume header with its key material, wherever it lives (a luks
 * file from offset 0, a qcow2 image's crypto area): unlocking a keyslot,
 * formatting a new header, and the `info` facts. What it reads and
 * writes goes through a {@link LuksArea}, so both drivers share it.
 */
import { nodeCrypto } from '../../core/random.js';

import { InvalidArgumentError } from '../../core/errors.js';
import { afMerge, afSplit } from './luks-af.js';
import { masterKeyBytes, type CipherMode, type HashAlg, type IvgenAlg } from './luks-algs.js';
import {
  LUKS_DIGEST_BYTES, LUKS_KEY_ALIGN, LUKS_SALT_BYTES, LUKS_SLOTS, LUKS_STRIPES, materialBytes, parseLuksHeader, serializeLuksHeader,
  LUKS_HEADER_BYTES, type LuksHeader, type LuksSlot,
} from './luks-header.js';
import { checkPbkdf2Iterations, luksPbkdf2, pbkdf2PerSecond } from './luks-pbkdf.js';
import { LUKS_SECTOR, SectorCipher } from './luks-sector.js';

/** The bytes a LUKS header and its key material occupy. */
export interface LuksArea {
  /** Reads `into.length` bytes at `offset` from the header's start (zeros past the end). */
  read(offset: number, into: Uint8Array): Promise<void>;
  /** Writes at `offset` from the header's start. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Bytes available to the header and key material. */
  readonly size: number;
}

/** The minimum PBKDF2 counts qemu writes (QCRYPTO_BLOCK_LUKS_MIN_SLOT_KEY_ITERS / _MIN_MASTER_KEY_ITERS). */
const LUKS_MIN_ITERS = 1000;
/** qemu's default `iter-time`, in milliseconds. */
export const LUKS_DEFAULT_ITER_TIME = 2000;

/** Reads and parses the header of `area`. */
export async function readLuksHeader(area: LuksArea): Promise<LuksHeader> {
  const b = new Uint8Array(LUKS_HEADER_BYTES);
  await area.read(0, b);
  return parseLuksHeader(b, area.size);
}

/** The sector cipher a master (or slot) key drives. */
export function luksCipher(h: Pick<LuksHeader, 'cipherAlg' | 'cipherMode' | 'ivgenAlg' | 'ivgenHashAlg'>, key: Uint8Array): SectorCipher {
  return new SectorCipher({ cipherAlg: h.cipherAlg, cipherMode: h.cipherMode, ivgenAlg: h.ivgenAlg, ivgenHashAlg: h.ivgenHashAlg }, key);
}

/** What unlocking needs besides the area. */
export interface UnlockOptions {
  readonly password: Uint8Array;
  /** Largest PBKDF2 count any derivation may take (see luks-pbkdf.ts). */
  readonly maxIterations: number;
  /** The image, for messages. */
  readonly file?: string | undefined;
}

/** Refuses, before any derivation, a header whose counts are above the cap. */
function checkCounts(h: LuksHeader, o: UnlockOptions): void {
  checkPbkdf2Iterations(h.mkIterations, o.maxIterations, 'master key digest', o.file);
  h.slots.forEach((s, i) => {
    if (s.active) checkPbkdf2Iterations(s.iterations, o.maxIterations, `keyslot ${i}`, o.file);
  });
}

/** The master key slot `slot` holds for `password`, or undefined when the password does not open it. */
async function trySlot(area: LuksArea, h: LuksHeader, slot: LuksSlot, password: Uint8Array): Promise<Buffer | undefined> {
  const slotKey = await luksPbkdf2(h.hashAlg, password, slot.salt, slot.iterations, h.keyBytes);
  const material = new Uint8Array(materialBytes(h.keyBytes, slot.stripes));
  await area.read(slot.keyOffset * LUKS_SECTOR, material);
  luksCipher(h, slotKey).decrypt(material, 0);
  const candidate = afMerge(h.hashAlg, h.keyBytes, slot.stripes, material);
  const digest = await luksPbkdf2(h.hashAlg, candidate, h.mkSalt, h.mkIterations, LUKS_DIGEST_BYTES);
  return nodeCrypto().timingSafeEqual(digest, h.mkDigest) ? candidate : undefined;
}

/** True when `password` opens slot `i` (amend's erase-by-password). */
export async function unlockSlot(area: LuksArea, h: LuksHeader, i: number, password: Uint8Array): Promise<boolean> {
  const s = h.slots[i];
  return s !== undefined && s.active && (await trySlot(area, h, s, password)) !== undefined;
}

/**
 * Finds the master key: tries each active slot in order, as qemu does.
 *
 * @returns the key and the slot that opened
 * @throws {PolicyError} EPOLICY when the header asks for more iterations than allowed
 * @throws {InvalidArgumentError} `Invalid password, cannot unlock any keyslot`
 */
export async function unlockLuks(area: LuksArea, h: LuksHeader, o: UnlockOptions): Promise<{ key: Buffer; slot: number }> {
  checkCounts(h, o);
  for (let i = 0; i < h.slots.length; i++) {
    const s = h.slots[i]!;
    if (!s.active) continue;
    const key = await trySlot(area, h, s, o.password);
    if (key) return { key, slot: i };
  }
  throw new InvalidArgumentError('Invalid password, cannot unlock any keyslot', { file: o.file });
}

/** What a new header is made of (the create options, checked and defaulted). */
export interface LuksFormat {
  readonly cipherAlg: string;
  readonly cipherMode: CipherMode;
  readonly ivgenAlg: IvgenAlg;
  readonly ivgenHashAlg: HashAlg | undefined;
  readonly hashAlg: HashAlg;
  /** Milliseconds of PBKDF2 work per slot unlock. */
  readonly iterTime: number;
}

/** PBKDF2 iterations for `iterTime` ms, as qemu scales them (`divisor` 8 for the master-key digest). */
async function calibrate(hash: HashAlg, secret: Uint8Array, bytes: number, iterTime: number, divisor: number): Promise<number> {
  const perSecond = await pbkdf2PerSecond(hash, secret, nodeCrypto().randomBytes(LUKS_SALT_BYTES), bytes, Math.max(0, iterTime));
  // qemu takes iter-time as unsigned: a negative one overflows the scaling, reported with the measured count.
  if (iterTime < 0) throw new InvalidArgumentError(`PBKDF iterations ${perSecond} too large to scale: Numerical result out of range`);
  const iters = Math.floor(Math.floor((perSecond * iterTime) / 1000) / divisor);
  if (iters > 0xffffffff) throw new InvalidArgumentError(`PBKDF iterations ${iters} larger than ${0xffffffff}`);
  return Math.max(iters, LUKS_MIN_ITERS);
}

/** Where slot `i`'s material starts, in sectors, for a key of `keyBytes` (qemu's layout). */
function slotSectors(keyBytes: number): number {
  const align = LUKS_KEY_ALIGN / LUKS_SECTOR;
  return Math.ceil(materialBytes(keyBytes, LUKS_STRIPES) / LUKS_SECTOR / align) * align;
}

/** Bytes a new header with its eight slots' material takes (the payload offset qemu writes). */
export function luksHeaderBytes(keyBytes: number): number {
  return LUKS_KEY_ALIGN + LUKS_SLOTS * slotSectors(keyBytes) * LUKS_SECTOR;
}

/** A new header (master key drawn, digest and slot layout made), not yet written, with no active slot. */
export async function newLuksHeader(f: LuksFormat): Promise<{ header: LuksHeader; key: Buffer }> {
  const keyBytes = masterKeyBytes(f.cipherAlg, f.cipherMode);
  const key = nodeCrypto().randomBytes(keyBytes);
  luksCipher(f, key); // refuses algorithms node lacks before any work
  const mkSalt = nodeCrypto().randomBytes(LUKS_SALT_BYTES);
  const mkIterations = await calibrate(f.hashAlg, key, LUKS_DIGEST_BYTES, f.iterTime, 8);
  const mkDigest = await luksPbkdf2(f.hashAlg, key, mkSalt, mkIterations, LUKS_DIGEST_BYTES);
  const first = LUKS_KEY_ALIGN / LUKS_SECTOR;
  const slots: LuksSlot[] = Array.from({ length: LUKS_SLOTS }, (_, i) => ({
    active: false, iterations: 0, salt: new Uint8Array(LUKS_SALT_BYTES), keyOffset: first + i * slotSectors(keyBytes), stripes: LUKS_STRIPES,
  }));
  const header: LuksHeader = {
    cipherAlg: f.cipherAlg, cipherMode: f.cipherMode, ivgenAlg: f.ivgenAlg, ivgenHashAlg: f.ivgenAlg === 'essiv' ? f.ivgenHashAlg ?? 'sha256' : undefined,
    hashAlg: f.hashAlg, payloadOffset: luksHeaderBytes(keyBytes) / LUKS_SECTOR, keyBytes, mkDigest, mkSalt, mkIterations, uuid: nodeCrypto().randomUUID(), slots,
  };
  return { header, key };
}

/**
 * Fills slot `i` for `password`: new salt, calibrated count, the master
 * key split, encrypted and written to the slot's material. The header
 * itself is written by the caller.
 */
export async function storeLuksKey(area: LuksArea, h: LuksHeader, i: number, key: Uint8Array, password: Uint8Array, iterTime: number): Promise<void> {
  const slot = h.slots[i]!;
  const iterations = await calibrate(h.hashAlg, password, h.keyBytes, iterTime, 1);
  const salt = nodeCrypto().randomBytes(LUKS_SALT_BYTES);
  const slotKey = await luksPbkdf2(h.hashAlg, password, salt, iterations, h.keyBytes);
  const split = afSplit(h.hashAlg, key, slot.stripes);
  const material = new Uint8Array(materialBytes(h.keyBytes, slot.stripes));
  material.set(split);
  luksCipher(h, slotKey).encrypt(material, 0);
  await area.write(slot.keyOffset * LUKS_SECTOR, material);
  h.slots[i] = { ...slot, active: true, iterations, salt };
}

/** Writes the header's 592 bytes. */
export async function writeLuksHeader(area: LuksArea, h: LuksHeader): Promise<void> {
  await area.write(0, serializeLuksHeader(h));
}

/** The `format-specific` data of `info` (QCryptoBlockInfoLUKS, in schema order). */
export function describeLuks(h: LuksHeader): Record<string, unknown> {
  return {
    'cipher-alg': h.cipherAlg,
    'cipher-mode': h.cipherMode,
    'ivgen-alg': h.ivgenAlg,
    ...(h.ivgenHashAlg === undefined ? {} : { 'ivgen-hash-alg': h.ivgenHashAlg }),
    'hash-alg': h.hashAlg,
    'payload-offset': h.payloadOffset * LUKS_SECTOR,
    'master-key-iters': h.mkIterations,
    'uuid': h.uuid,
    'slots': h.slots.map((s) => (s.active
      ? { 'active': true, 'iters': s.iterations, 'stripes': s.stripes, 'key-offset': s.keyOffset * LUKS_SECTOR }
      : { 'active': false, 'key-offset': s.keyOffset * LUKS_SECTOR })),
  };
}
