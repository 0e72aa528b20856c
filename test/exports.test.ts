/** Pins the public API: adding or removing an export must be a deliberate change here. */
import assert from 'node:assert/strict';
import { it } from 'node:test';

it('the package exports exactly the documented names', async () => {
  const mod = await import('../src/index.js');
  assert.deepEqual(Object.keys(mod).sort(), [
    'AbortError',
    'BackingLoopError',
    'BlockDevice',
    'ChainDepthError',
    'CorruptImageError',
    'DriverRegistry',
    'FileStore',
    'InvalidArgumentError',
    'IoError',
    'Job',
    'LIMITS',
    'LockedError',
    'MemoryStore',
    'NotFoundError',
    'ProgressMeter',
    'UnknownFormatError',
    'UnsafeReferenceError',
    'UnsupportedError',
    'VdiskError',
    'compare',
    'convert',
    'create',
    'defaultRegistry',
    'formatOptionHelp',
    'formatSize',
    'info',
    'isVdiskError',
    'map',
    'mapAll',
    'mapDevice',
    'open',
    'parseOptionString',
    'parseSize',
    'parseSizeBig',
    'prepareCreate',
  ]);
});
