// The code base's contracts, enforced: promises are awaited or deliberately
// voided, and imports follow DESIGN.md's layers (cli → jobs → block →
// formats → io → core; imports point down only).
import tseslint from 'typescript-eslint';

// What each layer must not import. core is the floor everyone may use;
// src/version.ts is a leaf constant and counts as core. Beyond "down only":
// jobs reach io through block (block/types re-exports what they need), and
// the CLI touches neither a ByteStore (io) nor a format (formats).
const FORBIDDEN = {
  core: ['io', 'formats', 'block', 'jobs', 'cli'],
  io: ['formats', 'block', 'jobs', 'cli'],
  formats: ['block', 'jobs', 'cli'],
  block: ['jobs', 'cli'],
  jobs: ['cli', 'io', 'formats'],
  cli: ['io', 'formats'],
};

// Relative specifiers climb a known number of levels to src/, so each depth
// gets its own pattern: `../io/x.js` from src/jobs, `../../io/x.js` from
// src/formats/qcow2. src/index.ts (the public entry) is above every layer.
function layerRules(layer, forbidden) {
  return [1, 2, 3].map((depth) => {
    const up = '\\.\\./'.repeat(depth);
    return {
      files: [`src/${layer}/${'*/'.repeat(depth - 1)}*.ts`],
      rules: {
        '@typescript-eslint/no-restricted-imports': ['error', {
          patterns: [
            {
              regex: `^${up}(${forbidden.join('|')})/`,
              message: `src/${layer} must not import ${forbidden.join(', ')} (DESIGN.md: cli → jobs → block → formats → io → core, imports point down).`,
            },
            { regex: `^${up}index\\.js$`, message: 'Layers must not import the package entry (src/index.ts).' },
          ],
        }],
      },
    };
  });
}

// Comments say why, not which ticket: a tracker reference ("issue 14",
// "#12") means nothing to a reader of the code.
const TRACKER = /\bissue\s*#?\d+|(?:^|\s)#\d+\b/i;
const local = {
  rules: {
    'no-tracker-comments': {
      meta: { type: 'suggestion', schema: [], messages: { tracker: 'Tracker reference in a comment: say why instead.' } },
      create(context) {
        return {
          Program() {
            for (const c of context.sourceCode.getAllComments()) if (TRACKER.test(c.value)) context.report({ loc: c.loc, messageId: 'tracker' });
          },
        };
      },
    },
  },
};

export default tseslint.config(
  { ignores: ['build/**', 'dist/**', 'api-docs/**', 'node_modules/**', 'native/**', 'bench/work/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, local },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      'local/no-tracker-comments': 'error',
    },
  },
  {
    // Every error vdisk throws has a class that says what it is.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "NewExpression[callee.name='VdiskError']",
        message: 'Throw a VdiskError subclass (core/errors.ts), not the base class.',
      }],
    },
  },
  {
    // Jobs and the CLI go through BlockDevice and block/layer.ts, never into a format image
    // (the VdiskError rule is repeated: a later block's rule replaces an earlier one for its files).
    files: ['src/jobs/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "NewExpression[callee.name='VdiskError']",
        message: 'Throw a VdiskError subclass (core/errors.ts), not the base class.',
      }, {
        selector: "MemberExpression[property.name='image'][object.property.name=/^(top|layer)$/]",
        message: 'Jobs and the CLI do not reach into a format image: use BlockDevice or block/layer.ts.',
      }, {
        selector: "MemberExpression[property.name='image'][object.name='layer']",
        message: 'Jobs and the CLI do not reach into a format image: use BlockDevice or block/layer.ts.',
      }, {
        selector: "MemberExpression[property.name='image'][object.type='MemberExpression'][object.computed=true][object.object.property.name='layers']",
        message: 'Jobs and the CLI do not reach into a format image: use BlockDevice or block/layer.ts.',
      }],
    },
  },
  {
    // node:test's test()/describe() return promises the runner itself tracks.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
    },
  },
  ...Object.entries(FORBIDDEN).flatMap(([layer, forbidden]) => layerRules(layer, forbidden)),
);
