/**
 * `--image-opts`: a file name given as qemu option string
 * (`driver=qcow2,file.filename=disk.qcow2`). vdisk reads the keys that name
 * the file and its format; other keys are refused as qemu refuses unknown ones.
 */
import { InvalidArgumentError, UnsupportedError } from '../core/errors.js';
import { parseOptionString } from '../core/options.js';

/** What an image option string names. */
export interface ImageSpec {
  readonly filename: string;
  readonly format: string | undefined;
}

/** Parses an `--image-opts` string. */
export function parseImageOpts(text: string): ImageSpec {
  let driver: string | undefined;
  let filename: string | undefined;
  for (const { key, value } of parseOptionString(text)) {
    if (key === 'driver') driver = value;
    else if (key === 'file.filename' || key === 'filename') filename = value;
    else if (key === 'file.driver') {
      if (value !== 'file') throw new UnsupportedError(`Could not open '${text}': protocol '${value}' is not supported`);
    } else if (key === 'file' && filename === undefined) {
      throw new InvalidArgumentError(`Could not open '${text}': Cannot find device='${value}' nor node-name='${value}'`);
    } else {
      throw new InvalidArgumentError(`Could not open '${text}': Block format '${driver ?? 'raw'}' does not support the option '${key}'`);
    }
  }
  if (filename === undefined) throw new InvalidArgumentError(`Could not open '${text}': A block device must be specified for "file"`);
  return { filename, format: driver === 'file' ? 'raw' : driver };
}

/**
 * The file name and format a command was given: with `--image-opts` the
 * operand is an option string, and `-f` may not be given too.
 */
export function imageArg(operand: string, format: string | undefined, imageOpts: boolean): ImageSpec {
  if (!imageOpts) return { filename: operand, format };
  if (format !== undefined) throw new InvalidArgumentError('--image-opts and --format are mutually exclusive');
  return parseImageOpts(operand);
}
