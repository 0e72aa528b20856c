/**
 * The LUKS1 header (big-endian, 592 bytes; LUKS On-Disk Format
 * Specification 1.2.3, as crypto/block-luks.c reads and writes it):
 * parsing with every field bounded before it sizes a read or a loop, and
 * serializing. Offsets count from the start of the header, which is the
 * start of a luks file or the start of a qcow2 image's crypto area.
 */
import { CorruptImageError, UnsupportedError } from '../../core/errors.js';
import { cipherAlgFor, CIPHER_MODES, essivCipherFor, HASH_ALGS, IVGEN_ALGS, type CipherMode, type HashAlg, type IvgenAlg } from './luks-algs.js';
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

function known<T extends string>(values: readonly T[], name: string, what: string): T {
  if ((values as readonly string[]).includes(name)) return name as T;
  throw new UnsupportedError(`${what} '${name}' not supported`);
}

/**
 * The header's names, understood in qcrypto_block_luks_parse_header's
 * order: the mode string's shape, its IV hash (parsed whatever the IV
 * generator), the mode, the cipher for the key size (XTS keys are two
 * halves), the hash, the IV generator, then ESSIV's hash and cipher.
 */
function parseNames(family: string, modeSpec: string, hashSpec: string, keyBytes: number): Pick<LuksHeader, 'cipherAlg' | 'cipherMode' | 'ivgenAlg' | 'ivgenHashAlg' | 'hashAlg'> {
  const dash = modeSpec.indexOf('-');
  if (dash < 0) throw new UnsupportedError(`Unexpected cipher mode string format '${modeSpec}'`);
  const rest = modeSpec.slice(dash + 1);
  const colon = rest.indexOf(':');
  const ivhash = colon < 0 ? undefined : known(HASH_ALGS, rest.slice(colon + 1), 'Hash algorithm');
  const cipherMode = known(CIPHER_MODES, modeSpec.slice(0, dash), 'Cipher mode');
  const cipherKey = cipherMode === 'xts' ? Math.floor(keyBytes / 2) : keyBytes;
  const cipherAlg = cipherAlgFor(family, cipherKey);
  if (cipherAlg === undefined) throw new UnsupportedError(`Algorithm '${family}' with key size ${cipherKey} bytes not supported`);
  const hashAlg = known(HASH_ALGS, hashSpec, 'Hash algorithm');
  const ivgenAlg = known(IVGEN_ALGS, colon < 0 ? rest : rest.slice(0, colon), 'IV generator');
  if (ivgenAlg !== 'essiv') return { cipherAlg, cipherMode, ivgenAlg, ivgenHashAlg: undefined, hashAlg };
  if (ivhash === undefined) throw new UnsupportedError('Missing IV generator hash specification');
  const essiv = essivCipherFor(cipherAlg, ivhash);
  if ('reason' in essiv) throw new UnsupportedError(essiv.reason);
  return { cipherAlg, cipherMode, ivgenAlg, ivgenHashAlg: ivhash, hashAlg };
}

/** Sectors of a slot's material as qemu counts them (key bytes × the slot's stripes, unrounded per stripe). */
function materialSectors(keyBytes: number, stripes: number): number {
  return Math.ceil((keyBytes * stripes) / LUKS_SECTOR);
}

/** Bytes of one slot's key material, as stored: whole sectors. */
export function materialBytes(keyBytes: number, stripes: number): number {
  return materialSectors(keyBytes, stripes) * LUKS_SECTOR;
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
  // qemu's order: qcrypto_block_luks_check_header (layout, counts, slot by slot), then the names.
  for (const [at, what] of [[F.cipherName, 'cipher name'], [F.cipherMode, 'cipher mode'], [F.hashSpec, 'hash spec']] as const) {
    if (b.subarray(at, at + NAME_BYTES).indexOf(0) < 0) throw corrupt(`LUKS header ${what} is not NUL terminated`, at);
  }
  const payloadOffset = v.getUint32(F.payloadOffset);
  if (payloadOffset < LUKS_KEY_ALIGN / LUKS_SECTOR) throw corrupt('LUKS payload is overlapping with the header', F.payloadOffset);
  const mkIterations = v.getUint32(F.mkIters);
  if (mkIterations === 0) throw corrupt('LUKS key iteration count is zero', F.mkIters);
  const keyBytes = v.getUint32(F.keyBytes);
  const slots = Array.from({ length: LUKS_SLOTS }, (_, i) => readSlot(b, v, i));
  const states = Array.from({ length: LUKS_SLOTS }, (_, i) => v.getUint32(F.slots + i * SLOT_BYTES));
  for (let i = 0; i < LUKS_SLOTS; i++) checkSlot(slots, states[i]!, i, keyBytes, payloadOffset);
  const names = parseNames(text(b, F.cipherName, NAME_BYTES), text(b, F.cipherMode, NAME_BYTES), text(b, F.hashSpec, NAME_BYTES), keyBytes);
  // vdisk's own bounds, past what qemu checks: a key size a cipher takes, material inside the area.
  if (keyBytes === 0 || keyBytes > LUKS_MAX_KEY_BYTES) throw corrupt(`LUKS key length ${keyBytes} is out of range (1..${LUKS_MAX_KEY_BYTES})`, F.keyBytes);
  slots.forEach((slot, i) => checkMaterialInside(slot, i, keyBytes, areaBytes));
  return {
    ...names,
    payloadOffset, keyBytes,
    mkDigest: b.slice(F.mkDigest, F.mkDigest + LUKS_DIGEST_BYTES),
    mkSalt: b.slice(F.mkSalt, F.mkSalt + LUKS_SALT_BYTES),
    mkIterations,
    uuid: text(b, F.uuid, 40),
    slots,
  };
}

/** A slot as stored; its state word is checked in {@link checkSlot}, in qemu's order. */
function readSlot(b: Uint8Array, v: DataView, i: number): LuksSlot {
  const at = F.slots + i * SLOT_BYTES;
  return { active: v.getUint32(at) === LUKS_SLOT_ACTIVE, iterations: v.getUint32(at + 4), salt: b.slice(at + 8, at + 8 + LUKS_SALT_BYTES), keyOffset: v.getUint32(at + 40), stripes: v.getUint32(at + 44) };
}

/** qcrypto_block_luks_check_header's checks of slot `i`: stripes, state, count, then where its material lies. */
function checkSlot(slots: readonly LuksSlot[], state: number, i: number, keyBytes: number, payloadOffset: number): void {
  const s = slots[i]!;
  const at = F.slots + i * SLOT_BYTES;
  if (s.stripes !== LUKS_STRIPES) throw corrupt(`Keyslot ${i} is corrupted (stripes ${s.stripes} != ${LUKS_STRIPES})`, at + 44);
  if (state !== LUKS_SLOT_ACTIVE && state !== LUKS_SLOT_INACTIVE) throw corrupt(`Keyslot ${i} state (active/disable) is corrupted`, at);
  if (s.active && s.iterations === 0) throw corrupt(`Keyslot ${i} iteration count is zero`, at + 4);
  const len = materialSectors(keyBytes, s.stripes);
  if (s.keyOffset < LUKS_KEY_ALIGN / LUKS_SECTOR) throw corrupt(`Keyslot ${i} is overlapping with the LUKS header`, at + 40);
  if (s.keyOffset + len > payloadOffset) throw corrupt(`Keyslot ${i} is overlapping with the encrypted payload`, at + 40);
  for (let j = i + 1; j < slots.length; j++) {
    const o = slots[j]!;
    const olen = materialSectors(keyBytes, o.stripes);
    if (s.keyOffset + len > o.keyOffset && o.keyOffset + olen > s.keyOffset) throw corrupt(`Keyslots ${i} and ${j} are overlapping in the header`);
  }
}

/** vdisk's own bound: an active slot's material lies inside the LUKS area (the file, or qcow2's crypto clusters). */
function checkMaterialInside(slot: LuksSlot, i: number, keyBytes: number, areaBytes: number): void {
  const start = slot.keyOffset * LUKS_SECTOR;
  const bytes = materialBytes(keyBytes, slot.stripes);
  if (slot.active && start + bytes > areaBytes) {
    throw corrupt(`Keyslot ${i} key material (${start}+${bytes} bytes) lies beyond the end of the LUKS area (${areaBytes} bytes)`, F.slots + i * SLOT_BYTES + 40);
  }
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
