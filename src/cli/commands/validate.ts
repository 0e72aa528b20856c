import { UsageError, last, parseArgs, type OptSpec } from '../args.js';
import { outputFormat, reportError, type CliIo } from '../context.js';
import { validate, type ValidateResult } from '../../jobs/validate.js';
import { UNSAFE_EXIT } from './inspect.js';

const SPECS: readonly OptSpec[] = [
  { key: 'preset', long: ['preset'], arg: true },
  { key: 'output', long: ['output'], arg: true },
];

/** The verdict for people: one line per rule, its source below it. */
export function formatValidateHuman(r: ValidateResult): string {
  const lines = [`image: ${r.filename}`, `preset: ${r.preset}`];
  for (const rule of r.rules) lines.push(`${rule.ok ? 'ok  ' : 'FAIL'} ${rule.id}: ${rule.message}`, `     source: ${rule.source}`);
  lines.push(`verdict: ${r.accepted ? 'accepted' : 'rejected'}`);
  return lines.join('\n') + '\n';
}

/**
 * `vdisk validate --preset NAME [--output=human|json] filename` — exit 0
 * accepted, 2 rejected, 1 when the file cannot be read (as inspect).
 */
export async function validateCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const output = outputFormat(last(args, 'output'));
    const preset = last(args, 'preset');
    if (preset === undefined) throw new UsageError('Expecting --preset NAME');
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const result = await validate(args.operands[0] as string, preset);
    io.stdout(output === 'json' ? JSON.stringify(result, null, 4) + '\n' : formatValidateHuman(result));
    return result.accepted ? 0 : UNSAFE_EXIT;
  } catch (err) {
    return reportError(io, err);
  }
}
