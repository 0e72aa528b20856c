import { info, type ImageInfo } from '../../jobs/info.js';
import { toQemuJson } from '../../jobs/qemu-output.js';
import { imageArg } from '../image-opts.js';
import { parseArgs, UsageError, last, type OptSpec } from '../args.js';
import { outputFormat, reportError, warningPrinter, type CliIo } from '../context.js';
import { formatInfoHuman } from '../info-human.js';
import { formatQemuJson } from '../qemu-json.js';
import { INGEST_OPTIONS, ingestFrom } from '../ingest-options.js';
import { TRUST_OPTIONS, trustFrom } from '../trust-options.js';
import { NETWORK_OPTIONS, networkFrom } from '../network-flags.js';
import { OBJECT_OPTION, secretsFrom } from '../objects.js';

const SPECS: readonly OptSpec[] = [
  { key: 'format', short: 'f', long: ['format'], arg: true },
  { key: 'output', long: ['output'], arg: true },
  { key: 'backingChain', long: ['backing-chain'] },
  { key: 'forceShare', short: 'U', long: ['force-share'] },
  { key: 'cache', short: 't', long: ['cache'], arg: true },
  OBJECT_OPTION,
  { key: 'imageOpts', long: ['image-opts'] },
  ...TRUST_OPTIONS,
  ...NETWORK_OPTIONS,
  ...INGEST_OPTIONS,
];

/** `vdisk info [-f fmt] [--output=human|json] [--backing-chain] [-U] filename` */
export async function infoCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const args = parseArgs(argv, SPECS);
    // The operand count first, then --output, as img_info checks them after its getopt loop.
    if (args.operands.length !== 1) throw new UsageError('Expecting one image file name');
    const output = outputFormat(last(args, 'output'));
    const { filename, format } = imageArg(args.operands[0] as string, last(args, 'format'), args.flags.has('imageOpts'), io, args.flags.has('forceShare'));
    const chain = args.flags.has('backingChain');
    const infos = await info(filename, { format, backingChain: chain, forceShare: args.flags.has('forceShare'), onWarning: warningPrinter(io), ...trustFrom(args), ...networkFrom(args), ...secretsFrom(args), ...ingestFrom(args) });
    if (output === 'json') {
      io.stdout(formatQemuJson(chain ? toQemuJson(infos) : toQemuJson(infos[0] as ImageInfo)) + '\n');
    } else {
      io.stdout(infos.map(formatInfoHuman).join('\n\n') + '\n');
    }
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}
