/**
 * The error model's typed fields: conditions the CLI and callers branch on
 * are `reason`, `stage`, `errno` and `exitCode` (not keys of `data`), one
 * code per condition, no base-class instances from failing jobs, SDK
 * messages in option names with qemu-img's flag wording added by the CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import {
  bench, bitmap, check, compare, convert, create, InvalidArgumentError, measure, MemoryStore, NotFoundError,
  open, parseSize, PermissionError, PolicyError, resize, snapshot, UnsupportedError, VdiskError,
} from '../../src/index.js';
import { cliWording } from '../../src/cli/qemu-wording.js';

const scratch = mkdtempSync(join(tmpdir(), 'vdisk-errors-typed-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Resolves to the error `p` rejects with (failing when it does not reject). */
async function failure(p: PromiseLike<unknown>): Promise<VdiskError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof VdiskError, `not a VdiskError: ${String(err)}`);
    // A failing job throws a subclass that says what went wrong, never the bare base class.
    assert.notEqual(Object.getPrototypeOf(err), VdiskError.prototype, `base VdiskError thrown: ${err.message}`);
    return err;
  }
  assert.fail('expected a rejection');
}

async function qcow2(name: string, size = 1 << 20): Promise<string> {
  const file = join(scratch, name);
  await create(file, { format: 'qcow2', size });
  return file;
}

/** CLI flags as qemu-img spells them: `-n`, `--shrink`, `-S 0`. */
const FLAG = /(^|[\s(])--?[a-zA-Z]/;

describe('typed error fields', () => {
  it('a size that does not parse is reason size-syntax', () => {
    assert.throws(() => parseSize('12Q'), (e: unknown) => e instanceof InvalidArgumentError && e.reason === 'size-syntax');
  });

  it('resize refuses a shrink with reason shrink-refused, in option words; the CLI prints qemu-img\'s', async () => {
    const file = await qcow2('shrink.qcow2');
    const err = await failure(resize(file, 4096));
    assert.equal(err.reason, 'shrink-refused');
    assert.doesNotMatch(err.message, FLAG);
    assert.equal(cliWording(err).message, 'Use the --shrink option to perform a shrink operation.');
  });

  it('check of a format without checks carries exitCode 63', async () => {
    const err = await failure(check(new MemoryStore('x.raw', new Uint8Array(512))));
    assert.equal(err.exitCode, 63);
    assert.equal(err.code, 'EUNSUPPORTED');
  });

  it('compare of a missing image carries exitCode 2', async () => {
    const file = await qcow2('cmp.qcow2');
    const err = await failure(compare(file, join(scratch, 'missing.qcow2')));
    assert.equal(err.exitCode, 2);
    assert.equal(err.code, 'ENOENT');
  });

  it('a snapshot action on a format without snapshots: stage action, reason no-snapshots, errno 95', async () => {
    const raw = join(scratch, 'snap.raw');
    await create(raw, { format: 'raw', size: 1 << 20 });
    const err = await failure(snapshot(raw, { action: 'create', name: 's1', format: 'raw' }));
    assert.ok(err instanceof UnsupportedError);
    assert.equal(err.stage, 'action');
    assert.equal(err.reason, 'no-snapshots');
    assert.equal(err.errno, 95);
    assert.equal(err.data, undefined);
  });

  it('rephrase keeps the class, code and typed fields', () => {
    const base = new UnsupportedError('x', { reason: 'no-snapshots', errno: 95, stage: 'action', exitCode: 63 });
    const r = base.rephrase('y: x');
    assert.ok(r instanceof UnsupportedError);
    assert.equal(r.code, 'EUNSUPPORTED');
    assert.deepEqual([r.reason, r.errno, r.stage, r.exitCode, r.cause], ['no-snapshots', 95, 'action', 63, base]);
    assert.equal(r.rephrase('z', { reason: undefined }).reason, undefined);
    assert.deepEqual(base.toJSON(), { name: 'UnsupportedError', code: 'EUNSUPPORTED', fault: 'user', message: 'x', reason: 'no-snapshots', errno: 95 });
  });
});

describe('one code per condition', () => {
  it('a snapshot that does not exist is ENOENT whether applied or opened for reading', async () => {
    const file = await qcow2('nosnap.qcow2');
    await snapshot(file, { action: 'create', name: 'one' });
    const applied = await failure(snapshot(file, { action: 'apply', name: 'nope' }));
    const opened = await failure(open(file, { readOnly: true, snapshot: { name: 'nope' } }));
    assert.ok(applied instanceof NotFoundError && opened instanceof NotFoundError);
    assert.equal(opened.message, "Failed to load snapshot: Can't find snapshot");
  });

  it('a write to a read-only device is a PermissionError (EPERM)', async () => {
    const dev = await open(new MemoryStore('ro.raw', new Uint8Array(4096), { readOnly: true }), { format: 'raw', readOnly: true });
    try {
      const err = await failure(dev.write(0, new Uint8Array(512)));
      assert.ok(err instanceof PermissionError);
      assert.equal(err.code, 'EPERM');
    } finally {
      await dev.close();
    }
  });
});

describe('SDK messages speak in option names', () => {
  it('validation errors of the jobs name no CLI flag', async () => {
    const file = await qcow2('flags.qcow2');
    const out = join(scratch, 'flags-out.qcow2');
    const errs = [
      await failure(convert(file, out, { targetFormat: 'qcow2', targetIsZero: true })),
      await failure(convert(file, out, { targetFormat: 'qcow2', skipBrokenBitmaps: true })),
      await failure(bench(file, { flushInterval: 4 })),
      await failure(bitmap(file, 'b', [])),
      await failure(measure(undefined, {})),
      await failure(check(file, { repair: 'some' as 'all' })),
    ];
    for (const e of errs) assert.doesNotMatch(e.message, FLAG, e.message);
  });

  it('the CLI words flagged conditions as qemu-img does', async () => {
    const file = await qcow2('cli.qcow2');
    const out = join(scratch, 'cli-out.qcow2');
    const wording = async (p: PromiseLike<unknown>): Promise<string> => cliWording(await failure(p)).message;
    assert.equal(await wording(convert(file, out, { targetFormat: 'qcow2', targetIsZero: true })), '--target-is-zero requires use of -n flag');
    assert.equal(await wording(bench(file, { flushInterval: 4 })), '--flush-interval is only available in write tests');
    const policy = new PolicyError("Virtual size 2 of 'x' is above 1 bytes, the most allowed (maxVirtualSize)", { reason: 'virtual-size-limit' });
    assert.equal(cliWording(policy).message, "Virtual size 2 of 'x' is above 1 bytes, the most allowed (maxVirtualSize, --max-virtual-size)");
  });
});
