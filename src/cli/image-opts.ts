/**
 * `--image-opts`: a command's image operand given as a qemu option string
 * (`driver=qcow2,file.filename=disk.qcow2,l2-cache-size=1M`). The string is
 * parsed by core/image-options.ts (pure) and opened by the block layer,
 * which checks every key as qemu does; this file is the command-line glue.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { parseImageOptsString, type ImageOptions } from '../core/image-options.js';
import type { ImageTarget } from '../block/chain.js';
import { PROG, type CliIo } from './context.js';

/** What a command's image operand names, and its `-f` format. */
export interface ImageSpec {
  readonly filename: ImageTarget;
  readonly format: string | undefined;
}

/**
 * Parses an `--image-opts` operand, printing qemu's deprecation warnings.
 * With `-U`, an explicit `force-share=off` is a conflict, as in qemu-img.
 */
export function parseImageOpts(text: string, io: CliIo, forceShare = false): ImageOptions {
  const parsed = parseImageOptsString(text);
  for (const w of parsed.warnings) io.stderr(`${PROG}: warning: ${w}\n`);
  if (forceShare) {
    const given = parsed.options.get('force-share');
    if (given !== undefined && !['on', 'yes', 'true', 'y'].includes(String(given))) throw new InvalidArgumentError('--force-share/-U conflicts with image options');
    parsed.options.set('force-share', 'on');
  }
  return parsed;
}

/**
 * The image a command was given: with `--image-opts` the operand is an
 * option string, and `-f` may not be given too.
 */
export function imageArg(operand: string, format: string | undefined, imageOpts: boolean, io: CliIo, forceShare = false): ImageSpec {
  if (!imageOpts) return { filename: operand, format };
  if (format !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive');
  return { filename: parseImageOpts(operand, io, forceShare), format: undefined };
}
