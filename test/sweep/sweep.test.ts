/**
 * A bounded, deterministic sample of the differential sweep (npm run sweep
 * runs all of it): every k-th case, topped up so every command and every
 * format appears, run by qemu-img and vdisk on identical inputs. Fails with
 * one line per difference not listed in deliberate.ts.
 * VDISK_SWEEP_SAMPLE=N runs N cases (default 200); 0 skips the test.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pLimit from 'p-limit';

import { requireQemu, tmpDir } from '../helpers/qemu.js';
import { coverageSample, generateCases } from './cases.js';
import { buildFixtures } from './fixtures.js';
import { diffLine, triage } from './report.js';
import { runCase } from './run-case.js';
import type { Difference } from './types.js';

const SAMPLE = Number(process.env['VDISK_SWEEP_SAMPLE'] ?? 200);
const MAX_LINES = 400;

const dir = tmpDir('vdisk-sweep-');
after(() => dir.cleanup());

describe('differential sweep against qemu-img (sample)', () => {
  it(`${SAMPLE} cases: no difference outside the deliberate list`, async (t) => {
    if (SAMPLE === 0) return t.skip('VDISK_SWEEP_SAMPLE=0');
    if (!requireQemu(t)) return;
    const fixtures = join(dir.path, 'fixtures');
    const work = join(dir.path, 'work');
    mkdirSync(work);
    await buildFixtures(fixtures);
    const cases = coverageSample(generateCases(), SAMPLE);
    const limit = pLimit(availableParallelism() + 1);
    const found: Difference[] = [];
    await Promise.all(cases.map((c) => limit(async () => found.push(...(await runCase(c, { fixtures, work })).differences))));
    const open = triage(found).sort((a, b) => a.caseId.localeCompare(b.caseId) || a.step - b.step);
    const lines = open.slice(0, MAX_LINES).map(diffLine);
    if (open.length > MAX_LINES) lines.push(`… and ${open.length - MAX_LINES} more (npm run sweep writes them all to its report)`);
    const cased = new Set(open.map((d) => d.caseId)).size;
    assert.equal(open.length, 0, `${open.length} differences in ${cased} of ${cases.length} cases:\n${lines.join('\n')}`);
  });
});
