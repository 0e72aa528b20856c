/**
 * The fs calls vdisk makes on names, taking and returning names as
 * core/byte-names.ts carries them: a name that is not UTF-8 reaches the
 * kernel as its own bytes, and paths read back (realpath, readlink) keep
 * theirs. Every fs call on a user's or an image's name goes through here.
 */
import type { Mode, OpenMode, RmOptions, Stats } from 'node:fs';

import { decodeName, fsName } from '../core/byte-names.js';
import * as fsp from './fs-calls.js';
import { FdHandle } from './fs-calls.js';

export function open(path: string, flags?: OpenMode, mode?: Mode): Promise<FdHandle> {
  return FdHandle.open(fsName(path), flags, mode);
}

export function stat(path: string): Promise<Stats> {
  return fsp.stat(fsName(path));
}

export function lstat(path: string): Promise<Stats> {
  return fsp.lstat(fsName(path));
}

export function rename(from: string, to: string): Promise<void> {
  return fsp.rename(fsName(from), fsName(to));
}

export function chmod(path: string, mode: number): Promise<void> {
  return fsp.chmod(fsName(path), mode);
}

export function chown(path: string, uid: number, gid: number): Promise<void> {
  return fsp.chown(fsName(path), uid, gid);
}

export function rm(path: string, options?: RmOptions): Promise<void> {
  return fsp.rm(fsName(path), options);
}

export async function realpath(path: string): Promise<string> {
  return decodeName(await fsp.realpathBytes(fsName(path)));
}

export async function readlink(path: string): Promise<string> {
  return decodeName(await fsp.readlinkBytes(fsName(path)));
}
