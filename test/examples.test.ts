/** Every example runs in the test suite, so a broken example fails `npm test`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { main as createAndInspect } from '../examples/create-and-inspect.js';
import { main as importPipeline } from '../examples/import-pipeline.js';
import { main as ingestUpload } from '../examples/ingest-upload.js';

describe('examples', () => {
  it('create-and-inspect runs and reports the copy', async () => {
    const out = await createAndInspect();
    assert.match(out, /copy\.raw: 67108864 bytes, 100% copied, 4096 bytes of data/);
  });

  it('import-pipeline imports a good upload and rejects one whose backing file leaves the upload directory', async () => {
    const [good, bad] = await importPipeline();
    assert.match(good ?? '', /^imported .*upload\.raw as qcow2, 8388608 bytes \(100%\)$/);
    assert.match(bad ?? '', /^rejected .*hostile\.qcow2: EUNSAFE: .*outside/);
  });

  it('ingest-upload accepts a gzip-wrapped raw disk and rejects a backing file and a format not allowed', async () => {
    const [wrapped, backed, vdi] = await ingestUpload();
    assert.match(wrapped ?? '', /^accepted .*disk\.raw\.gz: raw \(gzip\), 4194304 bytes$/);
    assert.match(backed ?? '', /^rejected .*overlay\.qcow2: backing-file$/);
    assert.match(vdi ?? '', /^rejected .*disk\.vdi: format-not-allowed$/);
  });
});
