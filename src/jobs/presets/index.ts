/** The presets by name. */
import { InvalidArgumentError } from '../../core/errors.js';
import { aws } from './aws.js';
import { azure } from './azure.js';
import { esxi } from './esxi.js';
import { gce } from './gce.js';
import { kubevirt } from './kubevirt.js';
import { openstack } from './openstack.js';
import { ova } from './ova.js';
import type { Preset, PresetName } from './types.js';

/** Every preset, by name. */
export const PRESETS: Readonly<Record<PresetName, Preset>> = { azure, aws, esxi, gce, openstack, kubevirt, ova };

/** The preset called `name`. @throws {InvalidArgumentError} for an unknown name */
export function presetByName(name: string): Preset {
  const preset = Object.hasOwn(PRESETS, name) ? PRESETS[name as PresetName] : undefined;
  if (!preset) throw new InvalidArgumentError(`Unknown preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`, { data: { preset: name } });
  return preset;
}
