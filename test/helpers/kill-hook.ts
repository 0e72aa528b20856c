/**
 * Loaded into a vdisk CLI child with `node --import` to stop it at a seeded
 * write or sync. Every file write, truncate and (data)sync is an
 * event; at event VDISK_KILL_AT (1-based) the process SIGKILLs itself before
 * doing it. With VDISK_KILL_MODE=powerloss it first puts back everything
 * written since each file's last sync (what a disk that lost power would
 * hold), after the writes in flight have landed. VDISK_KILL_COUNT_FILE
 * receives the number of events at exit (how many kill points there are).
 * The child should run with VDISK_NO_NATIVE=1, so zeroing and copy offload
 * go through writes this hook sees.
 */
import fs, { appendFileSync, fstatSync, ftruncateSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

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

// File stores write through node:fs's callback calls (io/fs-calls.ts FdHandle): those are wrapped,
// on the module object the bundle reads them from at each call and, synced, on its ESM exports.
type Done = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;
const calls = fs as unknown as Record<string, (...args: unknown[]) => void>;

/** Wraps callback call `name`: `before` runs (and may never return) before the real call starts. */
function wrap(name: string, before: (args: unknown[]) => Promise<void>): void {
  const real = calls[name]!;
  calls[name] = function (...args: unknown[]) {
    const done = args[args.length - 1] as Done;
    void before(args).then(
      () =>
        track(
          new Promise<void>((settle) =>
            real(...args.slice(0, -1), (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => {
              settle();
              done(err, ...rest);
            }),
          ),
        ),
      (err: unknown) => done(err as NodeJS.ErrnoException),
    );
  };
}

wrap('write', async ([fd, data, offset, length, position]) => {
  const f = fd as number;
  const len = typeof length === 'number' ? length : (data as Uint8Array).length - ((offset as number | undefined) ?? 0);
  await gate(`write fd=${f} at=${String(position)} len=${len}`);
  if (powerLoss && typeof position === 'number') remember(f, position, len);
});

wrap('ftruncate', async ([fd, size]) => {
  const f = fd as number;
  await gate(`truncate fd=${f} size=${String(size)}`);
  if (powerLoss) {
    const to = typeof size === 'number' ? size : 0;
    const oldSize = fstatSync(f).size;
    remember(f, Math.min(to, oldSize), Math.max(0, oldSize - to));
  }
});

for (const [name, label] of [['fsync', 'sync'], ['fdatasync', 'datasync']] as const) {
  const real = calls[name]!;
  calls[name] = function (fd: unknown, done: unknown) {
    const f = fd as number;
    void (async () => {
      await gate(`${label} fd=${f}`);
      const key = fileKey(f);
      await Promise.allSettled([...inFlight]);
      const synced = (volatile.get(key) ?? []).length;
      real(f, (err: NodeJS.ErrnoException | null) => {
        // writes issued while the sync ran stay volatile
        if (!err) volatile.set(key, (volatile.get(key) ?? []).slice(synced));
        (done as Done)(err);
      });
    })();
  };
}
syncBuiltinESMExports();

if (countFile) process.on('exit', () => writeFileSync(countFile, String(events)));
