/** The CLI side of progress: `-p` / `--progress[=json]` parsing and what each mode writes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseArgs } from '../../src/cli/args.js';
import { PROGRESS_OPTION, awaitWithProgress, progressMode } from '../../src/cli/progress-bar.js';
import { Job } from '../../src/core/job.js';
import { InvalidArgumentError } from '../../src/core/errors.js';

const SPECS = [PROGRESS_OPTION, { key: 'quiet', short: 'q' }];
const mode = (argv: string[]): string => {
  const args = parseArgs(argv, SPECS);
  return progressMode(args, args.flags.has('quiet'));
};

/** A job that reports 0, 50 and 100% of one phase and then succeeds (a 100% event of its own). */
function halfJob(): Job<string, 'copy'> {
  return new Job<string, 'copy'>(async (ctx) => {
    ctx.progress.phase('copy', 200);
    ctx.progress.advance(100);
    ctx.progress.finish();
    return 'ok';
  });
}

function capture(): { out: string[]; err: string[]; io: { stdout: (s: string) => void; stderr: (s: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) } };
}

describe('progress options', () => {
  it('parses -p, --progress and --progress=json; the last wins; -q silences the bar only', () => {
    assert.equal(mode([]), 'off');
    assert.equal(mode(['-p']), 'bar');
    assert.equal(mode(['--progress']), 'bar');
    assert.equal(mode(['--progress=json']), 'json');
    assert.equal(mode(['--progress=json', '-p']), 'bar');
    assert.equal(mode(['-p', '--progress=json']), 'json');
    assert.equal(mode(['-p', '-q']), 'off');
    assert.equal(mode(['-q', '--progress=json']), 'json');
    assert.throws(() => mode(['--progress=bar']), InvalidArgumentError);
  });

  it('--progress=json writes one JSON object per stderr line, the last at 100%, nothing on stdout', async () => {
    const c = capture();
    assert.equal(await awaitWithProgress(halfJob(), c.io, 'json'), 'ok');
    assert.deepEqual(c.out, []);
    const lines = c.err.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(c.err.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
    assert.deepEqual(lines.map((l) => [l['phase'], l['done'], l['percent']]), [['copy', 0, 0], ['copy', 100, 50], ['copy', 200, 99.99], ['copy', 200, 100]]);
    assert.equal(lines[0]?.['eta'], null);
  });

  it('-p draws qemu-img\'s line and not the final event, which its own closing line stands for', async () => {
    const c = capture();
    await awaitWithProgress(halfJob(), c.io, 'bar');
    assert.deepEqual(c.err, []);
    assert.equal(c.out.join(''), '    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\r    (100.00/100%)\r\n');
  });
});
