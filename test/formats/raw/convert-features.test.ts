/** convert's options through the API: parallel and out-of-order writes, salvage, wrapped sources, copy offload, rate limit. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';

import { zipSync } from 'fflate';

import { convert } from '../../../src/jobs/convert.js';
import { IoError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/io/memory-store.js';
import { tmpDir } from '../../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

/** 6 MiB: random runs, zero runs and a tail. */
function sample(): Buffer {
  const b = Buffer.alloc(6 * 1024 * 1024);
  let x = 99;
  for (let i = 0; i < b.length; i += 4) {
    const region = Math.floor(i / (256 * 1024)) % 3;
    if (region === 1) continue;
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(region === 2 ? 0x01010101 : x, i);
  }
  return b;
}
const SAMPLE = sample();
writeFileSync(p('sample.raw'), SAMPLE);

/** A memory store whose reads fail inside [badStart, badEnd). */
class FlakyStore extends MemoryStore {
  constructor(data: Uint8Array, private readonly badStart: number, private readonly badEnd: number) {
    super('flaky.raw', data, { readOnly: true });
  }
  override async read(offset: number, into: Uint8Array): Promise<number> {
    if (offset < this.badEnd && offset + into.length > this.badStart) throw new IoError(`Could not read 'flaky.raw' at offset ${offset}: Input/output error`);
    return super.read(offset, into);
  }
}

describe('convert options', () => {
  for (const [m, outOfOrder] of [[1, false], [8, false], [16, true]] as const) {
    it(`copies exactly with -m ${m}${outOfOrder ? ' -W' : ''}`, async () => {
      await convert(p('sample.raw'), p(`m${m}.raw`), { sourceFormat: 'raw', parallel: m, outOfOrder });
      assert.ok(readFileSync(p(`m${m}.raw`)).equals(SAMPLE));
    });
  }

  it('refuses -m outside 1..16', async () => {
    await assert.rejects(convert(p('sample.raw'), p('m0.raw'), { parallel: 0 }), /between 1 and 16/);
    await assert.rejects(convert(p('sample.raw'), p('m17.raw'), { parallel: 17 }), /between 1 and 16/);
  });

  it('copies with copy offload (-C)', async () => {
    await convert(p('sample.raw'), p('offload.raw'), { sourceFormat: 'raw', copyOffload: true });
    assert.ok(readFileSync(p('offload.raw')).equals(SAMPLE));
  });

  it('fails on a read error, and salvages it as zeros with a warning when asked', async () => {
    const bad = [1024 * 1024 + 512, 1024 * 1024 + 1536] as const;
    await assert.rejects(convert(new FlakyStore(SAMPLE, ...bad), p('flaky.raw'), { sourceFormat: 'raw' }), IoError);
    const warnings: string[] = [];
    const job = convert(new FlakyStore(SAMPLE, ...bad), p('salvaged.raw'), { sourceFormat: 'raw', salvage: true });
    job.on('warning', (w) => warnings.push(w.message));
    await job;
    const out = readFileSync(p('salvaged.raw'));
    const expected = Buffer.from(SAMPLE);
    expected.fill(0, bad[0], bad[1]);
    assert.ok(out.equals(expected));
    const sectors = warnings.map((w) => /error while reading at byte (\d+)/.exec(w)?.[1]).filter((x) => x !== undefined);
    assert.deepEqual(sectors, [String(bad[0]), String(bad[0] + 512)]);
  });

  it('converts gzip- and zip-wrapped sources directly and removes its scratch file', async () => {
    writeFileSync(p('sample.img.gz'), gzipSync(SAMPLE));
    writeFileSync(p('sample.zip'), zipSync({ 'disk.img': new Uint8Array(SAMPLE) }));
    await convert(p('sample.img.gz'), p('from-gz.raw'));
    await convert(p('sample.zip'), p('from-zip.raw'));
    assert.ok(readFileSync(p('from-gz.raw')).equals(SAMPLE));
    assert.ok(readFileSync(p('from-zip.raw')).equals(SAMPLE));
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(dir.path).filter((n) => n.includes('.vdisk-')), []);
  });

  it('treats a wrapped file as raw bytes when the source format is given', async () => {
    await convert(p('sample.img.gz'), p('gz-as-raw.raw'), { sourceFormat: 'raw' });
    assert.ok(readFileSync(p('gz-as-raw.raw')).subarray(0, readFileSync(p('sample.img.gz')).length).equals(readFileSync(p('sample.img.gz'))));
  });

  it('keeps under the rate limit (-r)', async () => {
    const small = SAMPLE.subarray(0, 512 * 1024);
    writeFileSync(p('small.raw'), small);
    const started = Date.now();
    await convert(p('small.raw'), p('rate.raw'), { sourceFormat: 'raw', rateLimit: 1024 * 1024 });
    // ~0.5 MiB of data at 1 MiB/s: the last request may not start before ~0.25 s
    assert.ok(Date.now() - started >= 200);
    assert.ok(readFileSync(p('rate.raw')).equals(small));
  });
});
