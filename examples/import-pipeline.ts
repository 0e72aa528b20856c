/**
 * An image-import pipeline: take an uploaded image of any supported format,
 * refuse anything that reaches outside the upload directory, convert it to
 * qcow2 with progress and a time budget, and describe the result.
 *
 * Run: node build/examples/import-pipeline.js
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convert, create, info, open, VdiskError } from '../src/index.js';

/** Imports `upload` into `target` as qcow2; returns a one-line report. */
export async function importImage(upload: string, target: string): Promise<string> {
  const job = convert(upload, target, {
    targetFormat: 'qcow2',
    trust: 'untrusted', // backing files, data files and extents must stay inside the upload's directory
    signal: AbortSignal.timeout(60_000),
  });
  let percent = 0;
  job.on('progress', (p) => (percent = p.percent)); // p.bytesPerSecond and p.eta (seconds) feed a progress display
  try {
    await job;
  } catch (err) {
    if (err instanceof VdiskError) return `rejected ${upload}: ${err.code}: ${err.message}`;
    throw err;
  }
  const [described] = await info(target, { format: 'qcow2' });
  return `imported ${upload} as ${described?.format}, ${described?.virtualSize} bytes (${percent}%)`;
}

export async function main(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'vdisk-import-'));
  try {
    // A well-formed upload: a raw disk with some data.
    const good = join(dir, 'upload.raw');
    await create(good, { format: 'raw', size: '8M' });
    const dev = await open(good, { format: 'raw', readOnly: false });
    await dev.write(1024 * 1024, new Uint8Array(4096).fill(0xab));
    await dev.close();

    // A hostile upload: a qcow2 overlay whose backing file is a host file outside the upload directory.
    const hostile = join(dir, 'hostile.qcow2');
    await create(hostile, { format: 'qcow2', size: '8M', backingFile: '/etc/hostname', backingFormat: 'raw', backingUnsafe: true });

    await writeFile(join(dir, 'README'), 'uploads land here\n');
    return [await importImage(good, join(dir, 'good.qcow2')), await importImage(hostile, join(dir, 'bad.qcow2'))];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line);
}
