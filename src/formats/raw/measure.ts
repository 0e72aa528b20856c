/** `measure` for raw targets (raw_measure): the file is the guest disk. */
import { alignUp } from '../../core/bytes.js';
import type { MeasureResult, MeasureSource, OptionValue } from '../driver.js';

/** Required and fully-allocated sizes are both the virtual size (rounded up to a sector without a source). */
export function measureRaw(size: number, _options: ReadonlyMap<string, OptionValue>, source?: MeasureSource): Promise<MeasureResult> {
  const required = source ? source.virtualSize : alignUp(size, 512);
  return Promise.resolve({ required, fullyAllocated: required });
}
