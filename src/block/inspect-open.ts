/**
 * Opening an upload for inspection: the one file given is read (inflated
 * first when it is wrapped), every driver's probe and the content
 * recognisers look at its head, and the best format's driver opens it
 * with a recorder in place of the resolver: the files the image names are
 * listed with where they would resolve, and none of them is ever opened.
 * The verdict is the job's (jobs/inspect.ts).
 */
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

import { UnsafeReferenceError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { ByteStore, ExternalFiles, ExternalOpenOptions, ExternalRole } from '../formats/driver.js';
import { contentSignatures, SIGNATURE_BYTES, type ContentSignature } from '../formats/signatures.js';
import { FileStore } from '../io/file-store.js';
import type { Wrapper } from '../io/unwrap.js';
import { checkFormatAllowed, type IngestPolicy, type UnwrapSettings } from './ingest-policy.js';
import type { Layer } from './layer.js';
import { openError, openLayer } from './layer-open.js';
import { probeAll } from './probe.js';
import type { DriverRegistry } from './registry.js';
import { protocolOf } from './resolver.js';
import { unwrapStore, wrapperOf, type WrapperInfo } from './unwrap.js';

/** A file an image names, as the inspector found it. */
export interface FoundReference {
  /** What the image uses it for. */
  readonly role: 'backing file' | 'data file' | 'extent';
  /** The name exactly as the image records it. */
  readonly name: string;
  /** The protocol of a `proto:` or `json:` name (a URL, an NBD export, options): never a local file. */
  readonly protocol?: string | undefined;
  /** Where a plain name would resolve: against the upload's directory (absent for a store or a protocol name). */
  readonly resolved?: string | undefined;
  /** True when `resolved` stays inside the upload's directory (judged on the names, without following links). */
  readonly inside?: boolean | undefined;
}

/** A format whose probe claims the file. */
export interface FormatMatch {
  /** The format's name, as `-f` takes it. */
  readonly format: string;
  /** The probe's score (100: magic matched; raw scores 1). */
  readonly score: number;
  /** True for a format vdisk recognises but cannot open. */
  readonly recognisedOnly: boolean;
}

/** What the inspection open learned. */
export interface Inspection {
  readonly filename: string;
  /** Bytes of the file given. */
  readonly fileSize: number;
  /** Bytes it occupies on disk, when known. */
  readonly allocatedSize: number | undefined;
  /** The wrapper it was inflated from. */
  readonly wrapper: WrapperInfo | undefined;
  /** A wrapper it has but that was not inflated (unwrapping off). */
  readonly unopenedWrapper: Wrapper | undefined;
  /** Every format whose probe claims the (inflated) file, best first. */
  readonly matches: readonly FormatMatch[];
  /** Content signatures (ISO 9660, GPT, MBR) in its first bytes. */
  readonly signatures: readonly ContentSignature[];
  /** The files the image names, in the order it names them. */
  readonly references: readonly FoundReference[];
  /** The top image, opened without backing files, when it opened. */
  readonly layer: Layer | undefined;
  /** Why the image did not inflate or open. */
  readonly error: unknown;
  /** Closes what the inspection opened (never a store the caller passed in). */
  close(): Promise<void>;
}

const ROLE_NAMES: Readonly<Record<ExternalRole | 'backing-file', FoundReference['role']>> = {
  'data-file': 'data file',
  extent: 'extent',
  'backing-file': 'backing file',
};

/** Stands in for a file the image names: it is recorded, never opened, and reads nothing. */
function stubStore(name: string): ByteStore {
  const refuse = (): never => {
    throw new UnsafeReferenceError(`'${name}' is not opened by an inspection`, { file: name });
  };
  return { name, readOnly: true, size: async () => 0, read: async () => refuse(), write: async () => refuse(), truncate: async () => refuse(), flush: async () => undefined, close: async () => undefined };
}

/** `store` for the drivers, whose close leaves it open: a store the caller passed in stays theirs. */
function borrowed(store: ByteStore): ByteStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'close') return async () => undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The ExternalFiles an inspection gives the driver: records every name, opens none. */
class ReferenceRecorder implements ExternalFiles {
  readonly found: FoundReference[] = [];
  constructor(private readonly dir: string | undefined) {}

  note(name: string, role: FoundReference['role']): void {
    if (this.found.some((r) => r.name === name && r.role === role)) return;
    const protocol = protocolOf(name);
    if (protocol !== undefined || this.dir === undefined) {
      this.found.push({ role, name, protocol });
      return;
    }
    const resolved = resolve(this.dir, name);
    const rel = relative(this.dir, resolved);
    const inside = rel !== '' && rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel);
    this.found.push({ role, name, resolved, inside });
  }

  declare(name: string, role: ExternalRole | 'backing-file'): void {
    this.note(name, ROLE_NAMES[role]);
  }

  async open(name: string, role: ExternalRole, options: ExternalOpenOptions): Promise<ByteStore> {
    this.note(name, ROLE_NAMES[role]);
    // A file holding metadata (a sparse extent) would have to be read for the open to go on.
    if (options.metadata) throw new UnsafeReferenceError(`Not opening the extent '${name}': an inspection opens no file but the image`);
    return stubStore(name);
  }
}

/** How to inspect. */
export interface InspectionSettings {
  readonly registry: DriverRegistry;
  readonly unwrap: UnwrapSettings;
  readonly policy: IngestPolicy | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The first bytes the probes and recognisers look at (zero-padded past the end, as probing pads). */
async function headOf(store: ByteStore): Promise<Uint8Array> {
  const head = new Uint8Array(SIGNATURE_BYTES);
  const size = await store.size();
  await store.read(0, head.subarray(0, Math.min(head.length, size)));
  return head;
}

/** Probes, then opens with the recorder; failures become the inspection's `error`. */
async function probeAndOpen(store: ByteStore, name: string, dir: string | undefined, settings: InspectionSettings) {
  const head = await headOf(store);
  const empty = (await store.size()) === 0;
  const claims = empty ? probeAll(new Uint8Array(0), name, settings.registry).filter((m) => m.driver.name === 'raw') : probeAll(head.subarray(0, LIMITS.probeBytes), name, settings.registry);
  const matches = claims.map((m) => ({ format: m.driver.name, score: m.score, recognisedOnly: m.driver.recognisedOnly === true }));
  const signatures = empty ? [] : contentSignatures(head);
  const recorder = new ReferenceRecorder(dir);
  const best = matches[0];
  let layer: Layer | undefined;
  let error: unknown;
  try {
    if (!best) throw new UnsafeReferenceError(`Could not determine the format of '${name}'`);
    checkFormatAllowed(settings.policy, best.format, name);
    // an inspection reads no guest data (qemu's BDRV_O_NO_IO): encrypted images need no key
    const ctx = { registry: settings.registry, options: { forceShare: true, describeOnly: true }, external: recorder };
    layer = await openLayer({ store, filename: name, path: name, format: best.format, readOnly: true }, ctx);
    if (layer.backing) recorder.note(layer.backing.filename, 'backing file');
  } catch (err) {
    error = openError(name, err);
  }
  return { matches, signatures, references: recorder.found, layer, error };
}

/**
 * Opens `target` for inspection. Only a missing or unreadable file
 * throws; everything the image itself gets wrong is in the result.
 *
 * @throws {NotFoundError} ENOENT and the other errors of opening the file given
 */
export async function openForInspection(target: string | ByteStore, settings: InspectionSettings): Promise<Inspection> {
  const name = typeof target === 'string' ? target : target.name;
  let store: ByteStore;
  try {
    store = typeof target === 'string' ? await FileStore.open(target, { readOnly: true }) : borrowed(target);
  } catch (err) {
    throw openError(name, err);
  }
  const owned: ByteStore[] = typeof target === 'string' ? [store] : [];
  const base = { filename: name, fileSize: await store.size(), allocatedSize: await store.allocatedSize?.(), close: () => Promise.allSettled(owned.map((s) => s.close())).then(() => undefined) };
  const none = { wrapper: undefined, unopenedWrapper: undefined, matches: [], signatures: [], references: [], layer: undefined };
  let wrapper: WrapperInfo | undefined;
  let unopenedWrapper: Wrapper | undefined;
  try {
    if (settings.unwrap.enabled) {
      const inflated = await unwrapStore(store, name, settings.unwrap, settings.signal);
      if (inflated) {
        owned.push(inflated.store);
        store = inflated.store;
        wrapper = inflated.wrapper;
      }
    } else {
      unopenedWrapper = await wrapperOf(store);
    }
  } catch (err) {
    return { ...base, ...none, error: openError(name, err) };
  }
  const dir = typeof target === 'string' ? dirname(resolve(target)) : undefined;
  const found = await probeAndOpen(store, name, dir, settings);
  return { ...base, ...found, wrapper, unopenedWrapper };
}
