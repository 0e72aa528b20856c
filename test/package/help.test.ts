/**
 * `--untrusted` (vdisk's own option: qemu-img has none) is listed in the
 * usage of every command that accepts it, and every command listed with it
 * accepts it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { vdisk } from '../helpers/cli.js';

/** The `Command syntax:` lines of `vdisk --help`, by command. */
function usageLines(): Map<string, string> {
  const help = vdisk(['--help']).stdout;
  const section = help.slice(help.indexOf('Command syntax:\n'), help.indexOf('\n\nCommand parameters:'));
  const lines = section.split('\n').slice(1).map((l) => l.trim());
  return new Map(lines.map((l) => [l.split(' ')[0] ?? '', l]));
}

describe('--untrusted in the help', () => {
  const usage = usageLines();

  it('lists every command', () => {
    assert.deepEqual([...usage.keys()].sort(), [
      'amend', 'bench', 'bitmap', 'check', 'commit', 'compare', 'convert', 'create', 'dd', 'info', 'inspect', 'map', 'measure', 'rebase', 'resize', 'snapshot', 'validate',
    ]);
  });

  for (const [command, line] of usageLines()) {
    // inspect and validate open no file but the one they judge: they have no trust mode.
    const listed = command !== 'inspect' && command !== 'validate';
    it(`${command}: ${listed ? 'lists and accepts' : 'neither lists nor accepts'} --untrusted`, () => {
      assert.equal(line.includes('[--untrusted]'), listed, line);
      const r = vdisk([command, '--untrusted']);
      assert.notEqual(r.status, 0);
      assert.equal(r.stderr.includes("unrecognized option '--untrusted'"), !listed, r.stderr);
    });
  }
});
