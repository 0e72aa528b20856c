/**
 * Doc comments are public text (typedoc renders those of the exported API):
 * no tracker references, to-do markers or notes to the people building
 * vdisk, and no pointers into source files a package user does not have.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NOTES = /\b(TODO|FIXME|HACK)\b|\bXXX\b(?!X)|\bissue ?#?\d|(?<![\w/])#\d{1,5}\b|\bthe lead\b|\bwave \d\b/i;

it('no doc comment in src/ carries an internal note', () => {
  const found: string[] = [];
  for (const e of readdirSync(join(ROOT, 'src'), { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const file = join(e.parentPath, e.name);
    for (const m of readFileSync(file, 'utf8').matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const hit = NOTES.exec(m[0].replaceAll('\\uXXXX', ''));
      if (hit) found.push(`${relative(ROOT, file)}: ${hit[0]}`);
    }
  }
  assert.deepEqual(found, []);
});
