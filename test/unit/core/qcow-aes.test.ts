import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { QcowAesCipher, qcowAesKey } from '../../../src/formats/crypto/qcow-aes.js';
import { qemuImgOk, requireQemu, tmpDir } from '../../helpers/qemu.js';

describe('qcow AES cipher', () => {
  it('decrypts what qemu writes into an encrypt.format=aes qcow2 and round-trips', (t) => {
    if (!requireQemu(t)) return;
    const dir = tmpDir();
    try {
      const img = join(dir.path, 'a.qcow2');
      qemuImgOk(['create', '-q', '-f', 'qcow2', '--object', 'secret,id=s0,data=abc', '-o', 'encrypt.format=aes,encrypt.key-secret=s0', img, '1M']);
      const io = spawnSync('qemu-io', ['--object', 'secret,id=s0,data=abc', '--image-opts', `driver=qcow2,file.filename=${img},encrypt.key-secret=s0`, '-c', 'write -P 0x5a 66048 512'], { encoding: 'utf8' });
      assert.equal(io.status, 0, io.stderr);
      const f = readFileSync(img);
      const dv = new DataView(f.buffer, f.byteOffset);
      const l2 = Number(dv.getBigUint64(Number(dv.getBigUint64(40))) & 0x00fffffffffffe00n);
      const data = Number(dv.getBigUint64(l2 + 8) & 0x00fffffffffffe00n); // guest cluster 1 (64 KiB)
      const cluster = new Uint8Array(f.subarray(data, data + 65536));
      const cipher = new QcowAesCipher(qcowAesKey('abc'));
      cipher.decrypt(cluster, 65536 / 512); // IVs count guest sectors
      assert.deepEqual([...new Set(cluster.subarray(512, 1024))], [0x5a]);
      assert.deepEqual([...new Set(cluster.subarray(0, 512))], [0]);
      const copy = cluster.slice();
      cipher.encrypt(copy, 128);
      assert.deepEqual(copy, new Uint8Array(f.subarray(data, data + 65536)));
    } finally {
      dir.cleanup();
    }
  });
});
