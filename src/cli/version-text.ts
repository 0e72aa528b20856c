import { VERSION } from '../version.js';

/** `vdisk --version` text (apart from help.ts, which loads every format driver to list them). */
export function versionText(): string {
  return `vdisk version ${VERSION}\nqemu-img compatible command line (reference: qemu-img 7.2)\n`;
}
