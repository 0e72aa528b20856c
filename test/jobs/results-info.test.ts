/**
 * info's typed result: a Job on a path and on a store, camelCase keys all
 * the way down, and `toQemuJson` giving back exactly (values and key order)
 * what `qemu-img --output=json` prints for info, check, measure and map.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { check, create, info, InvalidArgumentError, Job, measure, MemoryStore, toQemuJson, type ImageInfo } from '../../src/index.js';
import { mapAll } from '../../src/jobs/map.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

/** Every object key, deeply, with its path. */
function keysOf(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keysOf(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => [`${path}.${k}`, ...keysOf(v, `${path}.${k}`)]);
}

/** No key with a dash anywhere: the typed result is camelCase. */
function assertCamel(value: unknown): void {
  assert.deepEqual(keysOf(value).filter((k) => /-[^.[]*$/.test(k)), []);
}

/** Deep equality including the order of every object's keys. */
function assertSameJson(actual: unknown, expected: unknown): void {
  assert.deepEqual(actual, expected);
  assert.deepEqual(keysOf(actual), keysOf(expected));
}

const qemuJson = (args: readonly string[]): unknown => JSON.parse(qemuImgOk(args));

describe('info returns a Job of typed camelCase results', () => {
  it('on a path and on a MemoryStore', async () => {
    const dir = tmpDir('vdisk-results-');
    try {
      const file = join(dir.path, 'a.qcow2');
      await create(file, { format: 'qcow2', size: 1 << 20 });
      const job = info(file);
      assert.ok(job instanceof Job);
      const [top] = await job;
      assert.equal(job.state, 'done');
      assert.equal(top?.virtualSize, 1 << 20);
      assert.equal(top?.clusterSize, 65536);
      assert.equal(top?.dirtyFlag, false);
      assert.equal(top?.formatSpecific?.type, 'qcow2');
      if (top?.formatSpecific?.type === 'qcow2') {
        assert.equal(top.formatSpecific.data.refcountBits, 16);
        assert.equal(top.formatSpecific.data.compressionType, 'zlib');
        assert.equal(top.formatSpecific.data.lazyRefcounts, false);
      }
      assertCamel(top);

      const storeJob = info(new MemoryStore('a.qcow2', readFileSync(file), { readOnly: true }));
      assert.ok(storeJob instanceof Job);
      const [fromStore] = await storeJob;
      assert.equal(fromStore?.filename, 'a.qcow2');
      assert.deepEqual(fromStore?.formatSpecific, top?.formatSpecific);
      assertCamel(fromStore);
    } finally {
      dir.cleanup();
    }
  });

  it('a cancelled info rejects with an AbortError', async () => {
    const job = info(new MemoryStore('m', new Uint8Array(4096)));
    job.cancel();
    await assert.rejects(job, { code: 'EABORTED' });
  });

  it('toQemuJson refuses what is not a result', () => {
    assert.throws(() => toQemuJson({} as ImageInfo), InvalidArgumentError);
  });
});

describe('toQemuJson(result) is what qemu-img --output=json prints', () => {
  const sameInfo = async (file: string, extra: readonly string[] = [], chain = false): Promise<ImageInfo[]> => {
    const infos = await info(file, { backingChain: chain });
    assertCamel(infos);
    const expected = qemuJson(['info', '--output=json', ...extra, ...(chain ? ['--backing-chain'] : []), file]);
    assertSameJson(chain ? toQemuJson(infos) : toQemuJson(infos[0] as ImageInfo), expected);
    return infos;
  };

  it('qcow2 with a snapshot, a bitmap and a backing file (and the whole chain)', async (t) => {
    if (!requireQemu(t)) return;
    const dir = tmpDir('vdisk-results-');
    try {
      const base = join(dir.path, 'base.qcow2');
      const top = join(dir.path, 'top.qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', base, '1M']);
      qemuImgOk(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
      qemuImgOk(['snapshot', '-c', 'snap1', top]);
      qemuImgOk(['bitmap', '--add', top, 'bm0']);
      const [described] = await sameInfo(top);
      assert.equal(described?.snapshots?.[0]?.name, 'snap1');
      assert.equal(described?.backingFilename, 'base.qcow2');
      assert.equal(described?.fullBackingFilename, base);
      await sameInfo(top, [], true);
    } finally {
      dir.cleanup();
    }
  });

  it('qcow2 encrypted with LUKS', async (t) => {
    if (!requireQemu(t)) return;
    const dir = tmpDir('vdisk-results-');
    try {
      const file = join(dir.path, 'enc.qcow2');
      qemuImgOk(['create', '-q', '--object', 'secret,id=s0,data=pw', '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', file, '1M']);
      const [described] = await sameInfo(file);
      assert.equal(described?.encrypted, true);
    } finally {
      dir.cleanup();
    }
  });

  for (const [format, options] of [['vmdk', []], ['vmdk', ['-o', 'subformat=streamOptimized']], ['vpc', []], ['luks', ['--object', 'secret,id=s0,data=pw', '-o', 'key-secret=s0,iter-time=10']]] as const) {
    it(`${format} ${options.join(' ')}`.trim(), async (t) => {
      if (!requireQemu(t)) return;
      const dir = tmpDir('vdisk-results-');
      try {
        const file = join(dir.path, `x.${format}`);
        qemuImgOk(['create', '-q', '-f', format, ...options, file, '1M']);
        await sameInfo(file);
      } finally {
        dir.cleanup();
      }
    });
  }

  it('check, measure and map results', async (t) => {
    if (!requireQemu(t)) return;
    const dir = tmpDir('vdisk-results-');
    try {
      const file = join(dir.path, 'd.qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', file, '4M']);
      qemuImgOk(['bitmap', '--add', file, 'bm0']);
      qemuIo(file, ['write -P 0x11 0 64k', 'write -z 1M 64k', 'write -P 0x22 2M 128k'], 'qcow2');
      const raw = join(dir.path, 'd.raw');
      qemuImgOk(['create', '-q', '-f', 'raw', raw, '4M']);
      qemuIo(raw, ['write -P 0x33 1M 64k'], 'raw');
      assertSameJson(toQemuJson(await check(file)), qemuJson(['check', '--output=json', file]));
      assertSameJson(toQemuJson(await measure(file, { targetFormat: 'qcow2' })), qemuJson(['measure', '--output=json', '-O', 'qcow2', file]));
      assertSameJson(toQemuJson(await mapAll(file)), qemuJson(['map', '--output=json', file]));
      assertSameJson(toQemuJson(await mapAll(raw)), qemuJson(['map', '--output=json', '-f', 'raw', raw]));
    } finally {
      dir.cleanup();
    }
  });
});
