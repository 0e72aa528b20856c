import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { parseArgs } from '../../../src/cli/args.js';
import { OBJECT_OPTION, secretsFrom } from '../../../src/cli/objects.js';
import { lookupSecret, lookupSecretText } from '../../../src/core/secrets.js';
import { InvalidArgumentError } from '../../../src/core/errors.js';
import { tmpDir } from '../../helpers/qemu.js';

const secrets = (...objects: string[]): Map<string, Uint8Array> | undefined =>
  secretsFrom(parseArgs(objects.flatMap((o) => ['--object', o]), [OBJECT_OPTION])).secrets;
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

describe('--object secret (qemu 7.2 semantics)', () => {
  it('loads data=, format=base64 and file=', () => {
    const dir = tmpDir();
    try {
      writeFileSync(join(dir.path, 'pw'), 'from-file');
      const s = secrets('secret,id=a,data=abc', 'secret,id=b,data=YWJj,format=base64', `secret,id=c,file=${join(dir.path, 'pw')}`, 'secret_keyring,id=k,serial=1');
      assert.equal(text(s?.get('a')), 'abc');
      assert.equal(text(s?.get('b')), 'abc');
      assert.equal(text(s?.get('c')), 'from-file');
      assert.equal(s?.has('k'), false);
    } finally {
      dir.cleanup();
    }
  });

  it('gives qemu\'s messages for secrets that cannot be loaded', () => {
    assert.throws(() => secrets('secret,id=a,data=@@,format=base64'), { message: 'Base64 data contains invalid characters' });
    assert.throws(() => secrets('secret,id=a,file=/nonexistent/pw'), { message: 'Unable to read /nonexistent/pw: Failed to open file “/nonexistent/pw”: No such file or directory' });
    assert.throws(() => secrets('secret,id=a,data=abc,format=hex'), { message: "Parameter 'format' does not accept value 'hex'" });
    assert.throws(() => secrets('secret,id=s0,data=abc,keyid=s0'), { message: "Secret with id 's0' has no data" });
    assert.throws(() => secrets('secret,id=a,data=abc,keyid=m'), { message: "No secret with id 'm'" });
  });

  it('decrypts a keyid-encrypted secret as qcrypto_secret_decrypt does', () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const c = createCipheriv('aes-256-cbc', key, iv);
    const ciphertext = Buffer.concat([c.update('passphrase'), c.final()]).toString('base64');
    const s = secrets(`secret,id=m,data=${key.toString('base64')},format=base64`, `secret,id=p,data=${ciphertext},format=base64,keyid=m,iv=${iv.toString('base64')}`);
    assert.equal(text(s?.get('p')), 'passphrase');
    assert.throws(() => secrets(`secret,id=m,data=${key.toString('base64')},format=base64`, `secret,id=p,data=${ciphertext},format=base64,keyid=m`), { message: 'IV is required to decrypt secret' });
    assert.throws(() => secrets('secret,id=m,data=short', `secret,id=p,data=${ciphertext},format=base64,keyid=m,iv=${iv.toString('base64')}`), { message: 'Key should be 32 bytes in length' });
  });

  it('looks secrets up by id from a record or a map', () => {
    assert.equal(text(lookupSecret({ s0: 'pw' }, 's0')), 'pw');
    assert.equal(lookupSecretText(new Map([['s0', new Uint8Array([0x70, 0x77])]]), 's0'), 'pw');
    assert.throws(() => lookupSecret({ s0: 'pw' }, 'toString'), InvalidArgumentError);
    assert.throws(() => lookupSecret(undefined, 's1'), { message: "No secret with id 's1'" });
    assert.throws(() => lookupSecretText({ s0: new Uint8Array([0xff]) }, 's0'), { message: 'Data from secret s0 is not valid UTF-8' });
  });
});
