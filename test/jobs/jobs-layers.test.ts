/**
 * DESIGN.md's layers for jobs and the CLI: neither imports io/, directly
 * or through a block/ module that only re-exports io/ for them (the target
 * lifecycle and the file-system calls jobs need live in block/).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/** The TypeScript sources (tests run from build/test/jobs). */
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module `file` imports or re-exports from, as absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\bfrom\s+'(\.[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
}

const layer = (file: string): string => relative(SRC, file).split('/')[0]!;

describe('jobs and cli reach io only through block', () => {
  const files = ['jobs', 'cli'].flatMap((d) => sources(join(SRC, d)));

  it('finds the sources', () => assert.ok(files.length > 20));

  for (const file of files) {
    it(`${relative(SRC, file)} imports nothing from io/, nor a block/ re-export of io/`, () => {
      for (const dep of importsOf(file)) {
        assert.notEqual(layer(dep), 'io', `imports ${relative(SRC, dep)}`);
        if (layer(dep) !== 'block') continue;
        const passed = readFileSync(dep, 'utf8').match(/^export\s+(?:type\s+)?\{[^}]*\}\s+from\s+'\.\.\/io\/[^']+'/gm) ?? [];
        assert.deepEqual(passed, [], `${relative(SRC, dep)} re-exports io/ for it`);
      }
    });
  }
});
