/**
 * Tables of command lines run by qemu-img and by vdisk on fresh, identical
 * inputs: each must print the same stdout, the same stderr (in vdisk's
 * name) and exit with the same status, and leave the same files behind.
 */
import assert from 'node:assert/strict';

import { asVdisk, vdisk } from './cli.js';
import { qemuImg } from './qemu.js';

/** How {@link assertCasesMatchQemu} prepares and compares each case. */
export interface CaseTableOptions {
  readonly cwd: string;
  /** Makes the inputs again before each tool runs. */
  readonly fresh: () => void;
  /** Shown instead of stdout (to hide timings, or to make `\r` visible). */
  readonly stdout?: ((text: string) => string) | undefined;
  /** What a run left behind (files, their info), compared after each tool. */
  readonly outcome?: (() => string) | undefined;
}

/** Runs every argument list with both tools and asserts they behave alike. */
export function assertCasesMatchQemu(cases: readonly (readonly string[])[], o: CaseTableOptions): void {
  const shown = o.stdout ?? ((text: string) => text);
  for (const args of cases) {
    o.fresh();
    const theirs = qemuImg(args, { cwd: o.cwd });
    const left = o.outcome?.();
    o.fresh();
    const ours = vdisk(args, { cwd: o.cwd });
    const what = args.map((a) => JSON.stringify(a)).join(' ');
    assert.equal(shown(ours.stdout), shown(theirs.stdout), what);
    assert.equal(ours.stderr, asVdisk(theirs.stderr), what);
    assert.equal(ours.status, theirs.status, what);
    if (o.outcome) assert.equal(o.outcome(), left, what);
  }
}
