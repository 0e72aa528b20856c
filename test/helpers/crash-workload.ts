/**
 * The workload the crash tests drive through a writable qcow2 BlockDevice:
 * allocating writes, overwrites, discards, zero writes and compressed
 * writes at seeded offsets, with a flush now and then.
 */
import type { BlockDevice } from '../../src/block/device.js';
import { rng } from './fuzz.js';

/** Runs `steps` seeded operations on `dev` (16 MiB or more, 64 KiB clusters). */
export async function crashWorkload(dev: BlockDevice, seed: number, steps: number): Promise<void> {
  const next = rng(seed);
  const cs = 65536;
  const clusters = Math.floor(Math.min(dev.size, 16 * 1024 * 1024) / cs);
  for (let i = 0; i < steps; i++) {
    const c = Math.floor(next() * (clusters - 2));
    const r = next();
    const fill = 1 + Math.floor(next() * 250);
    if (r < 0.35) await dev.write(c * cs + Math.floor(next() * 8) * 4096, new Uint8Array(4096 * (1 + Math.floor(next() * 24))).fill(fill));
    else if (r < 0.5) await dev.write(c * cs, new Uint8Array(cs).fill(fill));
    else if (r < 0.62) await dev.discard(c * cs, cs * (1 + Math.floor(next() * 2)));
    else if (r < 0.75) await dev.writeZeroes(c * cs, cs * (1 + Math.floor(next() * 2)), { mayUnmap: next() < 0.5 });
    else if (r < 0.92) {
      const unit = new Uint8Array(cs);
      for (let k = 0; k < cs; k += 512) unit[k] = fill;
      await dev.writeCompressed(c * cs, unit);
    } else await dev.flush();
  }
}
