/**
 * An upload service: judge every upload with `inspect` before anything
 * else reads it, and convert only the safe ones under the same policy, so
 * the image converted is the image judged (wrapped uploads are inflated
 * the same way by both, in a private temporary directory).
 *
 * Run: node build/examples/ingest-upload.js
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { convert, create, inspect, open, type IngestPolicy } from '../src/index.js';

/** What this service accepts. Giving a policy makes the trust mode `none`: uploads may name no other file. */
const POLICY: IngestPolicy = { allowedFormats: ['qcow2', 'raw', 'vmdk'], maxVirtualSize: 1024 ** 3, maxInflatedSize: 2 * 1024 ** 3 };

/** Judges `upload` and, when it is safe, converts it to qcow2 at `target`; returns a one-line report. */
export async function ingest(upload: string, target: string): Promise<string> {
  const verdict = await inspect(upload, { policy: POLICY });
  if (!verdict.safe) return `rejected ${upload}: ${verdict.reasons.map((r) => r.code).join(', ')}`;
  await convert(upload, target, { targetFormat: 'qcow2', policy: POLICY, signal: AbortSignal.timeout(60_000) });
  const wrapped = verdict.wrapper ? ` (${verdict.wrapper.type})` : '';
  return `accepted ${upload}: ${verdict.format}${wrapped}, ${verdict.virtualSize} bytes`;
}

export async function main(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'vdisk-ingest-'));
  try {
    // A raw disk with data, uploaded gzip-compressed.
    const raw = join(dir, 'disk.raw');
    await create(raw, { format: 'raw', size: '4M' });
    const dev = await open(raw, { format: 'raw', readOnly: false });
    await dev.write(0, new Uint8Array(4096).fill(0xab));
    await dev.close();
    await writeFile(join(dir, 'disk.raw.gz'), gzipSync(await readFile(raw)));

    // A qcow2 whose backing file is another upload in the same directory: it would read that tenant's data.
    await create(join(dir, 'overlay.qcow2'), { format: 'qcow2', size: '4M', backingFile: 'disk.raw', backingFormat: 'raw' });

    // A format the service does not take.
    await create(join(dir, 'disk.vdi'), { format: 'vdi', size: '4M' });

    const out: string[] = [];
    for (const name of ['disk.raw.gz', 'overlay.qcow2', 'disk.vdi']) out.push(await ingest(join(dir, name), join(dir, `${name}.imported.qcow2`)));
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line);
}
