/**
 * A ByteStore that simulates power loss: writes land in a volatile view
 * (what reads see) and become durable only at flush. At the seeded write
 * number the store "loses power": that write and every later call fail,
 * and {@link PowerLossStore.durable} is what a disk would hold afterwards
 * (every write not yet flushed dropped).
 */
import type { ByteStore } from '../../src/io/byte-store.js';
import { MemoryStore } from '../../src/io/memory-store.js';

type Pending = { kind: 'write'; offset: number; data: Uint8Array } | { kind: 'truncate'; size: number };

/** Thrown by every call once the power is gone. */
export class PowerLoss extends Error {}

/** The fault-injecting store. */
export class PowerLossStore implements ByteStore {
  readonly name: string;
  readonly readOnly = false;
  readonly #live: MemoryStore;
  readonly #durable: MemoryStore;
  #pending: Pending[] = [];
  /** Writes seen so far. */
  writes = 0;
  /** Power is lost at this write number (1-based); Infinity never. */
  crashAt: number;
  #dead = false;

  constructor(initial: Uint8Array, crashAt = Infinity, name = 'powerloss.qcow2') {
    this.name = name;
    this.#live = new MemoryStore(name, initial);
    this.#durable = new MemoryStore(name, initial);
    this.crashAt = crashAt;
  }

  /** True once the power was lost. */
  get dead(): boolean {
    return this.#dead;
  }

  /** The bytes a disk holds after the power loss (flushed writes only). */
  durable(): Uint8Array {
    return this.#durable.bytes();
  }

  #alive(): void {
    if (this.#dead) throw new PowerLoss('power lost');
  }

  size(): Promise<number> {
    this.#alive();
    return this.#live.size();
  }

  read(offset: number, into: Uint8Array): Promise<number> {
    this.#alive();
    return this.#live.read(offset, into);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#alive();
    if (++this.writes >= this.crashAt) {
      this.#dead = true;
      throw new PowerLoss('power lost');
    }
    this.#pending.push({ kind: 'write', offset, data: data.slice() });
    await this.#live.write(offset, data);
  }

  async truncate(size: number): Promise<void> {
    this.#alive();
    this.#pending.push({ kind: 'truncate', size });
    await this.#live.truncate(size);
  }

  async flush(): Promise<void> {
    this.#alive();
    for (const p of this.#pending) {
      if (p.kind === 'write') await this.#durable.write(p.offset, p.data);
      else await this.#durable.truncate(p.size);
    }
    this.#pending = [];
  }

  async close(): Promise<void> {
    // the block layer closes after errors; nothing to release
  }
}
