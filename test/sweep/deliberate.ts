/**
 * Known, deliberate differences from qemu-img 7.2. A difference one of
 * these matches does not fail the sweep. Keep each entry small and precise:
 * it must match the difference it names and nothing else, and its `why`
 * is what the README's list of deliberate differences says.
 */
import type { DiffKind } from './types.js';

export interface Deliberate {
  readonly id: string;
  readonly why: string;
  /** `step` is the step's argv ([] for the images left after the case). */
  match(caseId: string, step: readonly string[], kind: DiffKind, qemuText: string, vdiskText: string): boolean;
}

const isGlobal = (caseId: string): boolean => caseId.startsWith('global: ');

export const DELIBERATE: readonly Deliberate[] = [
  {
    id: 'help-text',
    why: "vdisk's --help text is its own (same options, its name, its version, its vdisk-only options)",
    match: (caseId, step, kind) => (kind === 'stdout' || kind === 'stderr') && (step.includes('--help') || step.includes('-h') || (isGlobal(caseId) && step.length === 0)),
  },
  {
    id: 'version-text',
    why: 'vdisk --version prints vdisk\'s own version and the qemu-img version it follows',
    match: (_caseId, step, kind) => kind === 'stdout' && (step[0] === '-V' || step[0] === '--version'),
  },
];

/** The entry that explains a difference, if any. */
export function deliberateFor(caseId: string, step: readonly string[], kind: DiffKind, qemuText: string, vdiskText: string): Deliberate | undefined {
  return DELIBERATE.find((d) => d.match(caseId, step, kind, qemuText, vdiskText));
}
