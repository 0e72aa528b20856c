/**
 * The CLI's libuv pool: one thread per core, at least 2 (more threads than
 * cores slowed local converts on two cores), set before the first I/O; an
 * explicit UV_THREADPOOL_SIZE wins.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { threadPoolSize } from '../../../src/cli/process-setup.js';

const SETUP = fileURLToPath(new URL('../../../src/cli/process-setup.js', import.meta.url));

/** UV_THREADPOOL_SIZE after setUpProcess() in a fresh process with `env`. */
function poolAfterSetup(env: NodeJS.ProcessEnv): string {
  const script = `import { setUpProcess } from ${JSON.stringify(SETUP)}; setUpProcess(); console.log(process.env.UV_THREADPOOL_SIZE);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

describe('CLI thread pool size', () => {
  it('is one thread per core, at least 2', () => {
    assert.deepEqual([1, 2, 3, 4, 8, 64].map(threadPoolSize), [2, 2, 3, 4, 8, 64]);
  });

  it('is set in the environment before the first I/O, unless already set', () => {
    const { UV_THREADPOOL_SIZE: _unused, ...env } = process.env;
    assert.equal(poolAfterSetup(env), String(Math.max(2, availableParallelism())));
    assert.equal(poolAfterSetup({ ...env, UV_THREADPOOL_SIZE: '7' }), '7');
  });
});
