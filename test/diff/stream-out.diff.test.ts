/**
 * convertToStream and `vdisk convert … -` (stdout), with the length known
 * first: what the stream gives is that many bytes, the image the source
 * is, and `measure --exact` says the same length. The format writers have
 * their own files (stream-qcow2, stream-formats); this one pins the job
 * and the CLI around them on raw.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';

import { measure } from '../../src/index.js';
import { convertToStream } from '../../src/stream.js';
import { VDISK_BIN, vdisk } from '../helpers/cli.js';
import { qemuImgOk, qemuIo, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir('vdisk-stream-out-');
after(() => dir.cleanup());
const p = (n: string): string => join(dir.path, n);

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function source(t: Parameters<typeof requireQemu>[0], name: string, size: string): string | undefined {
  if (!requireQemu(t)) return undefined;
  qemuImgOk(['create', '-q', '-f', 'raw', p(name), size]);
  qemuIo(p(name), ['write -P 0x11 0 300k', 'write -P 0x22 5M 1M', 'write -z 9M 1M'], 'raw');
  return p(name);
}

describe('convertToStream', () => {
  it('raw: the source bytes, exactly the length announced, which measure exact gives too', async (t) => {
    const src = source(t, 'a.raw', '12M');
    if (!src) return;
    const { length, stream, format } = await convertToStream(src, { targetFormat: 'raw' });
    assert.equal(format, 'raw');
    const out = await collect(stream);
    assert.equal(out.length, length);
    assert.ok(out.equals(readFileSync(src)));
    const m = await measure(src, { targetFormat: 'raw', exact: true });
    assert.equal(m.exactSize, length);
  });

  it('is a web stream too (Readable.toWeb)', async (t) => {
    const src = source(t, 'w.raw', '12M');
    if (!src) return;
    const { length, stream } = await convertToStream(src);
    let n = 0;
    for await (const c of Readable.toWeb(stream) as AsyncIterable<Uint8Array>) n += c.length;
    assert.equal(n, length);
  });

  it('an abort destroys the stream with an AbortError and closes the source', async (t) => {
    const src = source(t, 'b.raw', '16M');
    if (!src) return;
    const ac = new AbortController();
    const { stream } = await convertToStream(src, { signal: ac.signal, highWaterMark: 65536 });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await assert.rejects(async () => {
      for (;;) if ((await it.next()).done) break;
    }, (err: Error) => err.name === 'AbortError');
  });

  it('a format that cannot be streamed is refused before any byte', async (t) => {
    const src = source(t, 'c.raw', '12M');
    if (!src) return;
    await assert.rejects(convertToStream(src, { targetFormat: 'qed' }), /cannot be written to a stream/);
  });
});

describe('vdisk convert … - (stdout) and measure --exact', () => {
  it('writes the image to stdout; measure --exact prints its length, human and JSON', (t) => {
    const src = source(t, 'd.raw', '11M');
    if (!src) return;
    const r = spawnSync(process.execPath, [VDISK_BIN, 'convert', '-O', 'raw', src, '-'], { maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(r.stdout.equals(readFileSync(src)));
    const human = vdisk(['measure', '--exact', '-O', 'raw', src]);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^exact size: ${r.stdout.length}$`, 'm'));
    const json = JSON.parse(vdisk(['measure', '--exact', '--output=json', '-O', 'raw', src]).stdout) as Record<string, number>;
    assert.equal(json['exact-size'], r.stdout.length);
  });

  it('a reader that goes away: exit 1, one clear line, no stack trace', (t) => {
    const src = source(t, 'e.raw', '64M');
    if (!src) return;
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${VDISK_BIN}" convert -O raw "${src}" - | head -c 1000 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
    assert.match(r.stderr, /^vdisk: Could not write the image to stdout: the reader closed the pipe\nstatus=1\n$/);
  });

  it('options a stream cannot honour are refused by name', (t) => {
    const src = source(t, 'f.raw', '12M');
    if (!src) return;
    for (const [args, msg] of [
      [['-n'], /-n cannot be used when writing the image to stdout/],
      [['-B', 'x', '-F', 'raw'], /-B cannot be used/],
      [[src], /Only one source can be written to stdout/],
    ] as const) {
      const r = vdisk(['convert', '-O', 'raw', ...args, src, '-']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, msg);
    }
    const c = vdisk(['measure', '-c', '-O', 'raw', src]);
    assert.match(c.stderr, /-c and -S require --exact/);
  });
});
