/**
 * dmg: Apple's UDIF disk images, read-only, after QEMU's block/dmg.c
 * (qemu-img 7.2): zero, raw, ignore, zlib, bzip2 and lzfse chunks, as a
 * qemu-img with its dmg-bz2 and dmg-lzfse modules reads them; other chunk
 * types are reported at open and fail to read. This file wires the parts
 * together.
 */
import type { ByteStore, FormatDriver, FormatImage, OpenOptions } from '../driver.js';
import { openDmg } from './image.js';
import { probeDmg } from './probe.js';

/** The dmg format driver. */
export const dmgDriver: FormatDriver = {
  name: 'dmg',
  readOnly: true,
  createOptions: [],
  probe: probeDmg,
  open: (store: ByteStore, options: OpenOptions): Promise<FormatImage> => openDmg(store, options),
};
