import { inspect, type InspectResult } from '../../jobs/inspect.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { outputFormat, reportError, type CliIo } from '../context.js';
import { INGEST_OPTIONS, ingestFrom } from '../ingest-options.js';

const SPECS: readonly OptSpec[] = [{ key: 'output', long: ['output'], arg: true }, ...INGEST_OPTIONS];

/** Exit status of an upload judged unsafe (1 stays "could not inspect", as qemu-img's errors). */
export const UNSAFE_EXIT = 2;

/** The verdict for people: what the file is, what it names, and why it is unsafe. */
export function formatInspectHuman(r: InspectResult): string {
  const lines = [`image: ${r.filename}`, `format: ${r.format ?? 'unknown'}`];
  // raw claims every file: only other formats are news.
  const others = r.formats.slice(1).filter((m) => m.format !== 'raw').map((m) => m.format);
  if (others.length > 0) lines.push(`also probes as: ${others.join(', ')}`);
  if (r.signatures.length > 0) lines.push(`content: ${r.signatures.join(', ')}`);
  if (r.wrapper) lines.push(`wrapper: ${r.wrapper.type}${r.wrapper.entry === undefined ? '' : ` (entry '${r.wrapper.entry}')`}, ${r.wrapper.compressedSize} bytes inflated to ${r.wrapper.inflatedSize}`);
  if (r.virtualSize !== undefined) lines.push(`virtual size: ${r.virtualSize} bytes`);
  lines.push(`file size: ${r.fileSize} bytes`);
  if (r.dataSize !== undefined) lines.push(`data: ${r.dataSize} bytes, metadata: ${r.metadataSize} bytes`);
  for (const ref of r.references) lines.push(`${ref.role}: ${ref.name}${ref.resolved === undefined ? '' : ` -> ${ref.resolved}`}`);
  lines.push(`verdict: ${r.safe ? 'safe' : 'unsafe'}`);
  for (const reason of r.reasons) lines.push(`  ${reason.code}: ${reason.message}`);
  return lines.join('\n') + '\n';
}

/**
 * `vdisk inspect [--output=human|json] [--allowed-formats=LIST] [--max-virtual-size=SIZE]
 * [--max-inflated-size=SIZE] [--no-unwrap] filename` — exit 0 safe, 2 unsafe, 1 when the file
 * cannot be inspected (missing, unreadable, bad options).
 */
export async function inspectCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    const output = outputFormat(last(args, 'output'));
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const result = await inspect(args.operands[0] as string, ingestFrom(args));
    io.stdout(output === 'json' ? JSON.stringify(result, null, 4) + '\n' : formatInspectHuman(result));
    return result.safe ? 0 : UNSAFE_EXIT;
  } catch (err) {
    return reportError(io, err);
  }
}
