/** Pins the public API: adding or removing an export must be a deliberate change here. */
import assert from 'node:assert/strict';
import { it } from 'node:test';

it('the main entry exports exactly the documented names', async () => {
  const mod = await import('../src/index.js');
  assert.deepEqual(Object.keys(mod).sort(), [
    'AbortError',
    'BackingLoopError',
    'BlockDevice',
    'ChainDepthError',
    'CorruptImageError',
    'FileStore',
    'InvalidArgumentError',
    'IoError',
    'Job',
    'LockedError',
    'MemoryStore',
    'NotFoundError',
    'PermissionError',
    'PolicyError',
    'UnknownFormatError',
    'UnsafeReferenceError',
    'UnsupportedError',
    'VdiskError',
    'amend',
    'bench',
    'bitmap',
    'capabilities',
    'check',
    'commit',
    'compare',
    'convert',
    'create',
    'dd',
    'decodeName',
    'info',
    'inspect',
    'map',
    'measure',
    'open',
    'parseImageOptsString',
    'parseSize',
    'rebase',
    'resize',
    'snapshot',
    'toQemuJson',
  ]);
});

it('vdisk/driver exports exactly the documented names', async () => {
  const mod = await import('../src/driver.js');
  assert.deepEqual(Object.keys(mod).sort(), [
    'DriverRegistry',
    'LIMITS',
    'ProgressMeter',
    'capabilitiesOf',
    'decodeName',
    'defaultRegistry',
    'encodeName',
    'formatOptionHelp',
    'formatSize',
    'parseOptionString',
    'parseSizeBig',
  ]);
});
