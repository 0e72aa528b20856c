/**
 * The built-in drivers, listed explicitly so that importing this module
 * registers nothing by side effect. Order matters only for equal probe
 * scores; raw comes last.
 */
import { bochsDriver } from './bochs/index.js';
import { cloopDriver } from './cloop/index.js';
import { dmgDriver } from './dmg/index.js';
import type { FormatDriver } from './driver.js';
import { qcowDriver } from './qcow/index.js';
import { parallelsDriver } from './parallels/index.js';
import { luksDriver } from './luks/index.js';
import { qcow2Driver } from './qcow2/index.js';
import { qedDriver } from './qed/index.js';
import { fileFormatDriver, rawDriver } from './raw/index.js';
import { vdiDriver } from './vdi/index.js';
import { vhdxDriver } from './vhdx/index.js';
import { vmdkDriver } from './vmdk/index.js';
import { vpcDriver } from './vpc/index.js';

export { isPassThroughFormat } from './raw/index.js';
export { checkProtocolCreateOptions, checkSimplePreallocation, FILE_PROTOCOL_OPTIONS, SIMPLE_PROTOCOL_OPTIONS, type CreateProtocol } from './protocol-options.js';

/** Every format driver vdisk ships, in qemu's order for equal probe scores, then raw. */
export const builtinDrivers: readonly FormatDriver[] = [qcow2Driver, vpcDriver, vdiDriver, vhdxDriver, vmdkDriver, qcowDriver, qedDriver, parallelsDriver, luksDriver, bochsDriver, dmgDriver, cloopDriver, rawDriver, fileFormatDriver];
