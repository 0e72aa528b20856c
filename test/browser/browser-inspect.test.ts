/**
 * The browser build in a real browser (Debian's chromium driven by
 * playwright-core): a page loads dist/browser/vdisk.js as an ES module,
 * inspects a good image and hostile ones from Blobs, and shows the
 * verdicts. Skipped loudly when chromium is missing (CI installs it).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { create, open } from '../../src/index.js';
import { MemoryStore } from '../../src/io/memory-store.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const BUNDLE = fileURLToPath(new URL('../../src/browser/vdisk.js', import.meta.url));
if (!CHROMIUM) console.error('\n*** test/browser: chromium is not installed; the browser-build tests are SKIPPED ***\n');

const PAGE = `<!doctype html><meta charset="utf-8"><title>vdisk</title><pre id="out"></pre>
<script type="module">
import { inspect, validate, BlobStore } from '/vdisk.js';
const out = {};
for (const name of ['good.qcow2', 'backing-outside.qcow2', 'confused.raw']) {
  const blob = await (await fetch('/images/' + name)).blob();
  const r = await inspect(new BlobStore(blob, name));
  out[name] = { safe: r.safe, format: r.format, reasons: r.reasons.map((x) => x.code) };
}
const v = await validate(new BlobStore(await (await fetch('/images/good.qcow2')).blob(), 'good.qcow2'), 'openstack');
const w = await validate(new BlobStore(await (await fetch('/images/backing-outside.qcow2')).blob(), 'b.qcow2'), 'openstack');
out.validate = { good: v.accepted, backing: w.accepted, failed: w.rules.filter((r) => !r.ok).map((r) => r.id) };
document.getElementById('out').textContent = JSON.stringify(out);
</script>`;

/** Image bytes made with vdisk's own create, in memory. */
async function qcow2(backing?: string): Promise<Uint8Array> {
  const store = new MemoryStore('x.qcow2');
  await create(store, { format: 'qcow2', size: '4M', backingFile: backing, backingFormat: backing ? 'raw' : undefined });
  if (!backing) {
    const dev = await open(store, { readOnly: false });
    await dev.write(0, new Uint8Array(4096).fill(1));
    await dev.close();
  }
  return store.bytes();
}

/** The page's result, read in the page (a browser global, not typed here). */
declare const document: { getElementById(id: string): { textContent: string | null } | null };

describe('the browser build in chromium', { skip: !CHROMIUM && 'chromium is missing' }, () => {
  let server: Server;
  let base = '';
  const images = new Map<string, Uint8Array>();

  before(async () => {
    images.set('good.qcow2', await qcow2());
    images.set('backing-outside.qcow2', await qcow2('/etc/shadow'));
    // A raw upload whose first sector says qcow2 further on: what a guest could write to fool a prober.
    const confused = new Uint8Array(1024 * 1024);
    confused.set(images.get('good.qcow2')!.subarray(0, 512), 0);
    confused[4] = 0xff; // a version qemu does not know
    images.set('confused.raw', confused);
    server = createServer((req, res) => {
      if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      if (req.url === '/vdisk.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(BUNDLE));
      const img = images.get((req.url ?? '').replace('/images/', ''));
      if (img) return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(img);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('the bundle imports nothing', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    assert.doesNotMatch(text, /^\s*import\s/m);
    assert.doesNotMatch(text, /from\s*["']node:/);
  });

  it('inspects and validates a good and hostile images from Blobs and shows the verdicts', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(base + '/');
      await page.waitForFunction(() => (document.getElementById('out')?.textContent ?? '') !== '', undefined, { timeout: 30_000 });
      const out = JSON.parse((await page.textContent('#out')) ?? '{}') as Record<string, { safe: boolean; format: string; reasons: string[] }>;
      assert.deepEqual(errors, []);
      assert.equal(out['good.qcow2']?.safe, true, JSON.stringify(out));
      assert.equal(out['good.qcow2']?.format, 'qcow2');
      assert.equal(out['backing-outside.qcow2']?.safe, false, JSON.stringify(out));
      assert.equal(out['confused.raw']?.safe, false, JSON.stringify(out));
      const v = out['validate'] as unknown as { good: boolean; backing: boolean; failed: string[] };
      assert.equal(v.good, true, JSON.stringify(v));
      assert.equal(v.backing, false, JSON.stringify(v));
      assert.ok(v.failed.length > 0);
    } finally {
      await browser.close();
    }
  });
});
