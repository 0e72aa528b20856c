/**
 * Loaded into a vdisk CLI child with `node --import` to stop it at a seeded
 * write or sync. Every FileHandle write, truncate and (data)sync is an
 * event; at event VDISK_KILL_AT (1-based) the process SIGKILLs itself before
 * doing it. With VDISK_KILL_MODE=powerloss it first puts back everything
 * written since each file's last sync (what a disk that lost power would
 * hold), after the writes in flight have landed. VDISK_KILL_COUNT_FILE
 * receives the number of events at exit (how many kill points there are).
 * The child should run with VDISK_NO_NATIVE=1, so zeroing and copy offload
 * go through writes this hook sees.
 */
import { appendFileSync, fstatSync, ftruncateSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';

type Undo = { fd: number; position: number; old: Buffer; oldSize: number };

const at = Number(process.env['VDISK_KILL_AT'] ?? 0);
const powerLoss = process.env['VDISK_KILL_MODE'] === 'powerloss';
const countFile = process.env['VDISK_KILL_COUNT_FILE'];
/** Debugging aid: every event appended to this file as "N kind fd position length". */
const traceFile = process.env['VDISK_KILL_TRACE'];

let events = 0;
let dying = false;
const inFlight = new Set<Promise<unknown>>();
/** Unsynced changes per file (dev:ino), oldest first. */
const volatile = new Map<string, Undo[]>();

const fileKey = (fd: number): string => {
  const st = fstatSync(fd);
  return `${st.dev}:${st.ino}`;
};

function remember(fd: number, position: number, length: number): void {
  const oldSize = fstatSync(fd).size;
  const old = Buffer.alloc(Math.max(0, Math.min(length, oldSize - position)));
  if (old.length) readSync(fd, old, 0, old.length, position);
  const key = fileKey(fd);
  volatile.set(key, [...(volatile.get(key) ?? []), { fd, position, old, oldSize }]);
}

/** Puts every file back to its last synced state, newest change first. */
function loseUnsynced(): void {
  for (const list of volatile.values()) {
    for (const u of [...list].reverse()) {
      if (u.old.length) writeSync(u.fd, u.old, 0, u.old.length, u.position);
      ftruncateSync(u.fd, u.oldSize);
    }
  }
}

async function die(): Promise<never> {
  dying = true;
  if (powerLoss) {
    await Promise.allSettled([...inFlight]);
    loseUnsynced();
  }
  process.kill(process.pid, 'SIGKILL');
  return new Promise<never>(() => undefined);
}

/** Counts an event; at the seeded one, never returns. */
async function gate(what: string): Promise<void> {
  if (dying) return new Promise<void>(() => undefined);
  if (traceFile) appendFileSync(traceFile, `${events + 1} ${what}\n`);
  if (++events === at) await die();
}

function track<T>(p: Promise<T>): Promise<T> {
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p)).catch(() => undefined);
  return p;
}

const probe = await open(process.execPath, 'r');
const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => Promise<unknown>> & { fd: number };
await probe.close();

const write = proto['write']!;
proto['write'] = async function (this: { fd: number }, ...args: unknown[]) {
  const [data, offset, length, position] = args as [Uint8Array, number | undefined, number | undefined, number | undefined];
  await gate(`write fd=${this.fd} at=${String(position)} len=${length ?? data.length}`);
  if (powerLoss && typeof position === 'number') remember(this.fd, position, length ?? data.length - (offset ?? 0));
  return track(write.apply(this, args));
};

const truncate = proto['truncate']!;
proto['truncate'] = async function (this: { fd: number }, ...args: unknown[]) {
  await gate(`truncate fd=${this.fd} size=${String(args[0])}`);
  if (powerLoss) {
    const size = Number(args[0] ?? 0);
    const oldSize = fstatSync(this.fd).size;
    remember(this.fd, Math.min(size, oldSize), Math.max(0, oldSize - size));
  }
  return track(truncate.apply(this, args));
};

for (const name of ['sync', 'datasync']) {
  const sync = proto[name]!;
  proto[name] = async function (this: { fd: number }, ...args: unknown[]) {
    await gate(`${name} fd=${this.fd}`);
    const key = fileKey(this.fd);
    await Promise.allSettled([...inFlight]);
    const synced = (volatile.get(key) ?? []).length;
    const r = await sync.apply(this, args);
    // writes issued while the sync ran stay volatile
    volatile.set(key, (volatile.get(key) ?? []).slice(synced));
    return r;
  };
}

if (countFile) process.on('exit', () => writeFileSync(countFile, String(events)));
