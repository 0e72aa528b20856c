/**
 * Stopping a convert while the codec pool decodes or encodes: SIGINT
 * leaves no target and no temporary file and the CLI exits 1; through the
 * SDK an aborted (or finished) convert lets the process exit by itself,
 * since idle workers never keep it alive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { VDISK_BIN } from '../helpers/cli.js';
import { rng } from '../helpers/fuzz.js';
import { hasQemu, qemuImgOk, requireQemu, tmpDir } from '../helpers/qemu.js';

const dir = tmpDir();
after(() => dir.cleanup());
const cwd = dir.path;
const SDK = fileURLToPath(new URL('../../src/index.js', import.meta.url));
/** Longer than any of these runs may take: a process still alive then is hung. */
const HANG_MS = 30_000;

before(() => {
  if (!hasQemu) return;
  const b = Buffer.alloc(32 * 1024 * 1024);
  const next = rng(9);
  for (let at = 0; at < b.length; at += 65536) {
    if (next() < 0.5) b.fill(`cluster ${at}\n`, at, at + 65536);
    else for (let i = at; i < at + 4096; i++) b[i] = Math.floor(next() * 256);
  }
  writeFileSync(join(cwd, 'src.raw'), b);
  qemuImgOk(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'z.qcow2'], { cwd });
});

/** Runs a child; `onOutput` sees its stdout. Resolves with its exit code, or 'hung' after HANG_MS. */
function child(args: string[], onOutput: (text: string, kill: () => void) => void): Promise<{ code: number | null | 'hung'; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      resolve({ code: 'hung', out });
    }, HANG_MS);
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      onOutput(out, () => c.kill('SIGINT'));
    });
    c.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function noLeftovers(target: string): void {
  assert.equal(existsSync(join(cwd, target)), false, 'no target');
  assert.deepEqual(readdirSync(cwd).filter((n) => n.includes('.vdisk-')), [], 'no temporary file');
}

describe('interrupting a compressed convert', () => {
  for (const [what, args] of [
    ['decoding a zstd qcow2', ['-O', 'raw', 'z.qcow2', 'int.raw']],
    ['compressing with -c zstd', ['-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', 'src.raw', 'int.raw']],
  ] as const) {
    it(`SIGINT while ${what}: exit 1, no target, no temporary file`, async (t) => {
      if (!requireQemu(t)) return;
      // -r keeps the copy running long enough for the signal to land mid-way.
      let sent = false;
      const r = await child([VDISK_BIN, 'convert', '-p', '-r', '8M', ...args], (_text, kill) => {
        if (!sent) kill();
        sent = true;
      });
      assert.notEqual(r.code, 'hung', 'the process exits');
      if (r.code === 0) return t.skip('convert finished before the signal');
      assert.equal(r.code, 1);
      noLeftovers('int.raw');
    });
  }

  it('through the SDK: an aborted convert rejects with EABORTED and the process exits by itself', async (t) => {
    if (!requireQemu(t)) return;
    const script = `
      const { convert } = await import(${JSON.stringify(SDK)});
      const ac = new AbortController();
      const job = convert('z.qcow2', 'sdk.raw', { format: 'raw', signal: ac.signal, rateLimit: 8 * 1024 * 1024 });
      job.on('progress', (p) => { if (p.done > 0) ac.abort(); });
      try { await job; console.log('finished'); } catch (err) { console.log(err.code); }
      const done = await convert('z.qcow2', 'ok.raw', { format: 'raw' });
      console.log('converted', typeof done);
    `;
    const r = await child(['--input-type=module', '-e', script], () => undefined);
    assert.notEqual(r.code, 'hung', 'no worker keeps the process alive');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^(EABORTED|finished)\nconverted object\n$/);
    if (r.out.startsWith('EABORTED')) noLeftovers('sdk.raw');
    assert.ok(existsSync(join(cwd, 'ok.raw')));
  });
});
