/**
 * The TypeScript code users read in the docs: the ```ts blocks of README.md
 * and docs/*.md and the `@example` blocks of doc comments in src/, each
 * turned into a module that imports the public names it uses from 'vdisk'
 * and 'vdisk/driver', so test/package/consumer.test.ts can compile them
 * against the installed package.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** One code block and where it comes from (`file:line`). */
export interface Snippet {
  readonly where: string;
  readonly code: string;
}

/** Exported names of an entry file: values and types apart. */
interface EntryNames {
  readonly values: Set<string>;
  readonly types: Set<string>;
}

function entryNames(file: string): EntryNames {
  const text = readFileSync(file, 'utf8');
  const names: EntryNames = { values: new Set(), types: new Set() };
  for (const m of text.matchAll(/export (type )?\{([^}]*)\}/g)) {
    for (const raw of (m[2] ?? '').split(',')) {
      const item = raw.replace(/\/\/.*$|\/\*.*?\*\//gm, '').trim();
      if (!item) continue;
      const isType = m[1] !== undefined || item.startsWith('type ');
      const name = item.replace(/^type /, '').split(/\s+as\s+/).pop() ?? '';
      (isType ? names.types : names.values).add(name);
    }
  }
  return names;
}

function codeBlocks(text: string, lineOf: (index: number) => number, file: string): Snippet[] {
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => ({ where: `${file}:${lineOf(m.index)}`, code: m[1] ?? '' }));
}

function lineAt(text: string): (index: number) => number {
  return (index) => text.slice(0, index).split('\n').length;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

let entries: { main: EntryNames; driver: EntryNames } | undefined;

/** Every snippet under `root` that users read: docs, and the examples of public declarations. */
export function docSnippets(root: string): Snippet[] {
  entries = { main: entryNames(join(root, 'src', 'index.ts')), driver: entryNames(join(root, 'src', 'driver.ts')) };
  const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const fromDocs = docs.flatMap((f) => {
    const text = readFileSync(join(root, f), 'utf8');
    return codeBlocks(text, lineAt(text), f);
  });
  const fromComments = sourceFiles(join(root, 'src')).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const at = lineAt(text);
    return [...text.matchAll(/@example\s*\n((?:\s*\*.*\n)*?)\s*\*\s*```ts\n((?:\s*\*.*\n)*?)\s*\*\s*```/g)]
      .filter((m) => documentsPublicName(text.slice(m.index)))
      .map((m) => ({ where: `${relative(root, file)}:${at(m.index)}`, code: (m[2] ?? '').replace(/^\s*\* ?/gm, '') }));
  });
  return [...fromDocs, ...fromComments];
}

/**
 * Whether the comment starting `rest` documents something a user reads: a
 * declaration one of the entries exports, or a member (a public class's,
 * since an internal class's members are documented nowhere users look).
 */
function documentsPublicName(rest: string): boolean {
  const after = rest.slice(rest.indexOf('*/') + 2).trimStart();
  const decl = /^export (?:default )?(?:abstract )?(?:async )?(?:function\*?|class|interface|type|const|let) ([\w$]+)/.exec(after);
  if (!decl) return !after.startsWith('export') && !/^(?:async )?function|^(?:const|let|class|interface|type) /.test(after);
  const name = decl[1] ?? '';
  const { main, driver } = entries ?? { main: { values: new Set(), types: new Set() }, driver: { values: new Set(), types: new Set() } };
  return [main.values, main.types, driver.values, driver.types].some((set) => set.has(name));
}

/** The snippet as a module: its own imports when it has them, else imports of the public names it uses. */
export function snippetModule(code: string): string {
  if (code.includes("from 'vdisk")) return `${code}\nexport {};\n`;
  const { main, driver } = entries ?? { main: { values: new Set(), types: new Set() }, driver: { values: new Set(), types: new Set() } };
  const words = new Set(code.match(/[A-Za-z_$][\w$]*/g) ?? []);
  const pick = (e: EntryNames, skip: EntryNames | undefined): string[] => [
    ...[...e.values].filter((n) => words.has(n) && !skip?.values.has(n)),
    ...[...e.types].filter((n) => words.has(n) && !skip?.types.has(n)).map((n) => `type ${n}`),
  ];
  const fromMain = pick(main, undefined);
  const fromDriver = pick(driver, main);
  const imports = [
    fromMain.length ? `import { ${fromMain.join(', ')} } from 'vdisk';` : '',
    fromDriver.length ? `import { ${fromDriver.join(', ')} } from 'vdisk/driver';` : '',
  ].filter(Boolean);
  return `${imports.join('\n')}\n${code}\nexport {};\n`;
}
