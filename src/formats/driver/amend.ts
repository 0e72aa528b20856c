/**
 * Changing format options of an open image in place (`qemu-img amend`).
 */
import type { OptionSpec, OptionValue } from '../../core/options.js';

/** What an amend changes: `-o` values typed by {@link ImageAmender.options}. */
export interface AmendRequest {
  /** The options given, in the order given (later ones win). */
  readonly values: ReadonlyMap<string, OptionValue>;
  /** `--force` (LUKS keyslot management). */
  readonly force: boolean;
  /** Checked between steps; an abort leaves the image consistent (leaks at worst). */
  readonly signal?: AbortSignal | undefined;
  /**
   * Progress as qemu's amend status callback reports it (qcow2_amend_helper_cb):
   * `done` of `total` units of the whole amend, steps not yet started projected.
   */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** Changing format options of an open, writable image in place (qemu's bdrv_amend_options). */
export interface ImageAmender {
  /** The options `amend -o` accepts, in the driver's list order. */
  readonly options: readonly OptionSpec[];
  /** Applies the options; errors carry qemu-img's messages. */
  amend(request: AmendRequest): Promise<void>;
}
