import { VdiskError } from '../core/errors.js';
import type { FormatDriver } from '../formats/driver.js';
import type { ByteStore } from '../io/byte-store.js';
import { LIMITS } from '../core/limits.js';
import type { DriverRegistry } from './registry.js';

/** What probing found. */
export interface ProbeResult {
  readonly driver: FormatDriver;
  readonly score: number;
}

/**
 * Picks the driver whose probe scores highest on the first bytes of the
 * store, as qemu's find_image_format: an empty file is raw, otherwise the
 * probes see the first 512 bytes, zero-padded past the end of a shorter
 * file. Raw scores 1, so any driver that claims the file wins over it
 * (formats vdisk only recognises included: they are refused, never raw).
 * Returns undefined only when no driver (not even raw) is registered.
 */
export async function probeStore(store: ByteStore, filename: string, registry: DriverRegistry): Promise<ProbeResult | undefined> {
  const size = await store.size();
  if (size === 0) {
    const raw = registry.find('raw');
    return raw ? { driver: raw, score: 1 } : undefined;
  }
  const head = new Uint8Array(LIMITS.probeBytes);
  await readForProbe(store, head.subarray(0, Math.min(head.length, size)));
  return probeHead(head, filename, registry);
}

/** Reads a store's first bytes to tell its format; a failure in qemu's words (`Could not read image for determining its format: …`). */
export async function readForProbe(store: ByteStore, into: Uint8Array): Promise<number> {
  try {
    return await store.read(0, into);
  } catch (err) {
    if (!(err instanceof VdiskError)) throw err;
    throw err.rephrase(`Could not read image for determining its format: ${err.message}`);
  }
}

/** Probe over bytes already read (also used to vet writes to a probed raw image's first sector). */
export function probeHead(head: Uint8Array, filename: string, registry: DriverRegistry): ProbeResult | undefined {
  let best: ProbeResult | undefined;
  for (const driver of registry.list()) {
    let score = 0;
    try {
      score = driver.probe(head, filename);
    } catch {
      score = 0; // a probe must never throw; treat a buggy one as "not mine"
    }
    if (score > 0 && (!best || score > best.score)) best = { driver, score };
  }
  return best;
}

/** Every driver whose probe claims `head` (score above 0), best first (the inspector reports them all). */
export function probeAll(head: Uint8Array, filename: string, registry: DriverRegistry): ProbeResult[] {
  const found: ProbeResult[] = [];
  for (const driver of registry.list()) {
    let score = 0;
    try {
      score = driver.probe(head, filename);
    } catch {
      score = 0;
    }
    if (score > 0) found.push({ driver, score });
  }
  // Stable: equal scores keep the registry's order, which decides ties as probeHead does.
  return found.sort((a, b) => b.score - a.score);
}
