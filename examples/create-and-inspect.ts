/**
 * Create a raw image, write into it, convert it, and inspect the result:
 * the first thing most users of vdisk do.
 *
 * Run: node build/examples/create-and-inspect.js [directory]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convert, create, info, open } from '../src/index.js';

export async function main(dir?: string): Promise<string> {
  const work = dir ?? (await mkdtemp(join(tmpdir(), 'vdisk-example-')));
  try {
    const source = join(work, 'disk.raw');
    await create(source, { format: 'raw', size: '64M' });

    // Write a "boot sector" through the block layer.
    const dev = await open(source, { format: 'raw', readOnly: false });
    const sector = new Uint8Array(512);
    sector.set([0x55, 0xaa], 510);
    await dev.write(0, sector);
    await dev.close();

    // Convert with progress events, then describe the copy as qemu-img info would.
    const copy = join(work, 'copy.raw');
    const job = convert(source, copy, { sourceFormat: 'raw', targetFormat: 'raw' });
    let lastPercent = 0;
    job.on('progress', (p) => (lastPercent = p.percent)); // 100 only in the last event, once the copy is complete
    const result = await job;

    const [description] = await info(copy, { format: 'raw' });
    return `${result.target}: ${description?.virtualSize} bytes, ${lastPercent}% copied, ${result.dataBytes} bytes of data`;
  } finally {
    if (!dir) await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await main());
}
