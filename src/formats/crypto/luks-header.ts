/**
 * The LUKS1 header (big-endian, 592 bytes; LUKS On-Disk Format
 * Specification 1.2.3, as crypto/block-luks.c reads and writes it):
 * parsing with every field bounded before it sizes a read or a loop, and
 * serializing. Offsets count from the start of the header, which is the
 * start of a luks file or the start of a qcow2 image's crypto area.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { cipherAlgFor, CIPHER_MODES, HASH_ALGS, IVGEN_ALGS, type CipherMode, type HashAlg, type IvgenAlg } from './luks-algs.js';
import { LUKS_SECTOR } from './luks-sector.js';

const LUKS_MAGIC = Uint8Array.of(0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe);
export const LUKS_HEADER_BYTES = 592;
export const LUKS_SLOTS = 8;
export const LUKS_STRIPES = 4000;
const LUKS_SLOT_ACTIVE = 0x00ac71f3;
const LUKS_SLOT_INACTIVE = 0x0000dead;
export const LUKS_DIGEST_BYTES = 20;
export const LUKS_SALT_BYTES = 32;
/** Where key material starts and how it is aligned (QCRYPTO_BLOCK_LUKS_KEY_SLOT_OFFSET / _ALIGN), in bytes. */
export const LUKS_KEY_ALIGN = 4096;
/** Largest master key a LUKS1 cipher takes (XTS with a 256-bit cipher: 64 bytes). */
const LUKS_MAX_KEY_BYTES = 64;

const F = { version: 6, cipherName: 8, cipherMode: 40, hashSpec: 72, payloadOffset: 104, keyBytes: 108, mkDigest: 112, mkSalt: 132, mkIters: 164, uuid: 168, slots: 208 } as const;
const SLOT_BYTES = 48;
const NAME_BYTES = 32;

/** One keyslot. */
export interface LuksSlot {
  active: boolean;
  iterations: number;
  salt: Uint8Array;
  /** Key material offset, in 512-byte sectors from the header. */
  keyOffset: number;
  stripes: number;
}

/** A LUKS1 header, its names already understood. */
export interface LuksHeader {
  cipherAlg: string;
  cipherMode: CipherMode;
  ivgenAlg: IvgenAlg;
  ivgenHashAlg: HashAlg | undefined;
  hashAlg: HashAlg;
  /** Payload offset in 512-byte sectors from the header. */
  payloadOffset: number;
  keyBytes: number;
  mkDigest: Uint8Array;
  mkSalt: Uint8Array;
  mkIterations: number;
  uuid: string;
  slots: LuksSlot[];
}

function text(b: Uint8Array, at: number, len: number): string {
  const field = b.subarray(at, at + len);
  const end = field.indexOf(0);
  return new TextDecoder('latin1').decode(end < 0 ? field : field.subarray(0, end));
}

function corrupt(message: string, offset?: number): CorruptImageError {
  return new CorruptImageError(message, { offset });
}

/** Splits `xts-plain64` / `cbc-essiv:sha256` as qemu does. */
function parseMode(spec: string): { mode: CipherMode; ivgen: IvgenAlg; ivhash: HashAlg | undefined } {
  const dash = spec.indexOf('-');
  const mode = dash < 0 ? spec : spec.slice(0, dash);
  if (!(CIPHER_MODES as readonly string[]).includes(mode)) throw new UnsupportedError(`Cipher mode '${mode}' is not supported`);
  if (dash < 0) throw new UnsupportedError(`Unexpected cipher mode string format ${spec}`);
  const rest = spec.slice(dash + 1);
  const colon = rest.indexOf(':');
  const ivgen = colon < 0 ? rest : rest.slice(0, colon);
  if (!(IVGEN_ALGS as readonly string[]).includes(ivgen)) throw new UnsupportedError(`IV generator '${ivgen}' is not supported`);
  if (ivgen !== 'essiv') return { mode: mode as CipherMode, ivgen: ivgen as IvgenAlg, ivhash: undefined };
  if (colon < 0) throw new UnsupportedError('Missing IV generator hash specification');
  const ivhash = rest.slice(colon + 1);
  if (!(HASH_ALGS as readonly string[]).includes(ivhash)) throw new UnsupportedError(`Hash '${ivhash}' is not supported`);
  return { mode: mode as CipherMode, ivgen: 'essiv', ivhash: ivhash as HashAlg };
}

/** Bytes of one slot's key material, as stored: whole sectors. */
export function materialBytes(keyBytes: number, stripes: number): number {
  return Math.ceil((keyBytes * stripes) / LUKS_SECTOR) * LUKS_SECTOR;
}

/**
 * Parses and bounds a header. `areaBytes` is how far the LUKS area may
 * reach (the file for a luks image, the crypto extension for qcow2):
 * every active slot's material must lie inside it, after the header.
 *
 * @throws {CorruptImageError} for magic, version or bounds
 * @throws {UnsupportedError} for names qemu does not know
 */
export function parseLuksHeader(b: Uint8Array, areaBytes: number): LuksHeader {
  if (b.length < LUKS_HEADER_BYTES || !LUKS_MAGIC.every((x, i) => b[i] === x)) throw corrupt('Volume is not in LUKS format', 0);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = v.getUint16(F.version);
  if (version !== 1) throw new UnsupportedError(`LUKS version ${version} is not supported`);
  // qemu's order (qcrypto_block_luks_check_header, then the names): layout first, key size and names last.
  const payloadOffset = v.getUint32(F.payloadOffset);
  if (payloadOffset < LUKS_KEY_ALIGN / LUKS_SECTOR) throw corrupt('LUKS payload is overlapping with the header', F.payloadOffset);
  const keyBytes = v.getUint32(F.keyBytes);
  const slots: LuksSlot[] = [];
  for (let i = 0; i < LUKS_SLOTS; i++) slots.push(parseSlot(b, v, i));
  checkSlotLayout(slots, keyBytes, payloadOffset);
  if (keyBytes === 0 || keyBytes > LUKS_MAX_KEY_BYTES) throw corrupt(`LUKS key length ${keyBytes} is out of range (1..${LUKS_MAX_KEY_BYTES})`, F.keyBytes);
  slots.forEach((slot, i) => checkMaterialInside(slot, i, keyBytes, areaBytes));
  const family = text(b, F.cipherName, NAME_BYTES);
  const { mode, ivgen, ivhash } = parseMode(text(b, F.cipherMode, NAME_BYTES));
  const cipherAlg = cipherAlgFor(family, mode === 'xts' ? keyBytes / 2 : keyBytes);
  if (cipherAlg === undefined) throw new UnsupportedError(`Cipher '${family}' with key size ${keyBytes} bytes is not supported`);
  const hash = text(b, F.hashSpec, NAME_BYTES);
  if (!(HASH_ALGS as readonly string[]).includes(hash)) throw new UnsupportedError(`Hash '${hash}' is not supported`);
  return {
    cipherAlg, cipherMode: mode, ivgenAlg: ivgen, ivgenHashAlg: ivhash, hashAlg: hash as HashAlg,
    payloadOffset, keyBytes,
    mkDigest: b.slice(F.mkDigest, F.mkDigest + LUKS_DIGEST_BYTES),
    mkSalt: b.slice(F.mkSalt, F.mkSalt + LUKS_SALT_BYTES),
    mkIterations: v.getUint32(F.mkIters),
    uuid: text(b, F.uuid, 40),
    slots,
  };
}

function parseSlot(b: Uint8Array, v: DataView, i: number): LuksSlot {
  const at = F.slots + i * SLOT_BYTES;
  const state = v.getUint32(at);
  if (state !== LUKS_SLOT_ACTIVE && state !== LUKS_SLOT_INACTIVE) throw corrupt(`Keyslot ${i} state (active/disable) is corrupted`, at);
  const slot: LuksSlot = {
    active: state === LUKS_SLOT_ACTIVE,
    iterations: v.getUint32(at + 4),
    salt: b.slice(at + 8, at + 8 + LUKS_SALT_BYTES),
    keyOffset: v.getUint32(at + 40),
    stripes: v.getUint32(at + 44),
  };
  if (slot.stripes !== LUKS_STRIPES) throw corrupt(`Keyslot ${i} is corrupted (stripes ${slot.stripes} != ${LUKS_STRIPES})`, at + 44);
  if (slot.keyOffset < LUKS_KEY_ALIGN / LUKS_SECTOR) throw corrupt(`Keyslot ${i} is overlapping with the LUKS header`, at + 40);
  return slot;
}

/** vdisk's own bound: an active slot's material lies inside the LUKS area (the file, or qcow2's crypto clusters). */
function checkMaterialInside(slot: LuksSlot, i: number, keyBytes: number, areaBytes: number): void {
  const start = slot.keyOffset * LUKS_SECTOR;
  const bytes = materialBytes(keyBytes, slot.stripes);
  if (slot.active && start + bytes > areaBytes) {
    throw corrupt(`Keyslot ${i} key material (${start}+${bytes} bytes) lies beyond the end of the LUKS area (${areaBytes} bytes)`, F.slots + i * SLOT_BYTES + 40);
  }
}

/** qemu's checks of the slot layout: material inside the header area, no two slots sharing bytes. */
function checkSlotLayout(slots: readonly LuksSlot[], keyBytes: number, payloadOffset: number): void {
  // qemu counts the material unrounded (key bytes × stripes, in whole sectors)
  const sectors = Math.ceil((keyBytes * LUKS_STRIPES) / LUKS_SECTOR);
  slots.forEach((s, i) => {
    if (s.keyOffset + sectors > payloadOffset) throw corrupt(`Keyslot ${i} is overlapping with the encrypted payload`);
    for (let j = i + 1; j < slots.length; j++) {
      const o = slots[j]!;
      if (s.keyOffset < o.keyOffset + sectors && o.keyOffset < s.keyOffset + sectors) throw corrupt(`Keyslots ${i} and ${j} are overlapping in the header`);
    }
  });
}

function putText(b: Uint8Array, at: number, len: number, s: string): void {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length >= len) throw new RangeError(`LUKS header name '${s}' is too long`);
  b.fill(0, at, at + len);
  b.set(bytes, at);
}

/** The cipher mode string a header stores (`xts-plain64`, `cbc-essiv:sha256`). */
function modeSpec(h: Pick<LuksHeader, 'cipherMode' | 'ivgenAlg' | 'ivgenHashAlg'>): string {
  return h.ivgenAlg === 'essiv' ? `${h.cipherMode}-essiv:${h.ivgenHashAlg ?? 'sha256'}` : `${h.cipherMode}-${h.ivgenAlg}`;
}

/** Serializes a header (592 bytes). */
export function serializeLuksHeader(h: LuksHeader): Uint8Array {
  const b = new Uint8Array(LUKS_HEADER_BYTES);
  const v = new DataView(b.buffer);
  b.set(LUKS_MAGIC, 0);
  v.setUint16(F.version, 1);
  putText(b, F.cipherName, NAME_BYTES, h.cipherAlg.replace(/-\d+$/, ''));
  putText(b, F.cipherMode, NAME_BYTES, modeSpec(h));
  putText(b, F.hashSpec, NAME_BYTES, h.hashAlg);
  v.setUint32(F.payloadOffset, h.payloadOffset);
  v.setUint32(F.keyBytes, h.keyBytes);
  b.set(h.mkDigest, F.mkDigest);
  b.set(h.mkSalt, F.mkSalt);
  v.setUint32(F.mkIters, h.mkIterations);
  putText(b, F.uuid, 40, h.uuid);
  h.slots.forEach((s, i) => {
    const at = F.slots + i * SLOT_BYTES;
    v.setUint32(at, s.active ? LUKS_SLOT_ACTIVE : LUKS_SLOT_INACTIVE);
    v.setUint32(at + 4, s.iterations);
    b.set(s.salt, at + 8);
    v.setUint32(at + 40, s.keyOffset);
    v.setUint32(at + 44, s.stripes);
  });
  return b;
}
