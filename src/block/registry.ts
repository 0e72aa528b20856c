import { UnknownFormatError } from '../core/errors.js';
import type { OptionSpec, OptionValue } from '../core/options.js';
import type { FormatDriver } from '../formats/driver.js';
import { builtinDrivers, checkProtocolCreateOptions, FILE_PROTOCOL_OPTIONS, SIMPLE_PROTOCOL_OPTIONS, type CreateProtocol } from '../formats/index.js';

export { isPassThroughFormat } from '../formats/index.js';

/**
 * The set of format drivers a call may use. The default registry holds the
 * built-in drivers; embedders may build one with fewer (to forbid formats)
 * or more.
 */
export class DriverRegistry {
  readonly #drivers: FormatDriver[];

  constructor(drivers: readonly FormatDriver[] = builtinDrivers) {
    this.#drivers = [...drivers];
  }

  /** All drivers, in probe order. */
  list(): readonly FormatDriver[] {
    return this.#drivers;
  }

  /** The driver named `name`, or undefined. */
  find(name: string): FormatDriver | undefined {
    return this.#drivers.find((d) => d.name === name);
  }

  /**
   * The driver named `name`.
   *
   * @throws {UnknownFormatError} EFORMAT "Unknown file format 'x'"
   */
  get(name: string): FormatDriver {
    const d = this.find(name);
    if (!d) throw new UnknownFormatError(`Unknown file format '${name}'`, { data: { format: name } });
    return d;
  }

  /** Adds a driver (replacing one of the same name). */
  register(driver: FormatDriver): void {
    const i = this.#drivers.findIndex((d) => d.name === driver.name);
    if (i >= 0) this.#drivers[i] = driver;
    else this.#drivers.unshift(driver);
  }

  /**
   * The create options of `driver`, followed by those of the target's
   * protocol it does not define itself (the list qemu-img validates `-o`
   * against): the file's, or with `simple` a device's or an NBD export's.
   * A hidden driver option the protocol also has is the protocol's option
   * taken over by the driver (luks' preallocation): it is listed where the
   * protocol lists it, and the driver checks it.
   */
  createOptions(driver: FormatDriver, withProtocol = true, protocol: CreateProtocol = 'file'): readonly OptionSpec[] {
    if (!withProtocol) return driver.createOptions;
    const protocolOptions = protocol === 'simple' ? SIMPLE_PROTOCOL_OPTIONS : FILE_PROTOCOL_OPTIONS;
    const names = new Set(FILE_PROTOCOL_OPTIONS.map((o) => o.name));
    const listed = driver.createOptions.filter((o) => !(o.hidden === true && names.has(o.name)));
    const own = new Set(listed.map((o) => o.name));
    return [...listed, ...protocolOptions.filter((o) => !own.has(o.name))];
  }

  /**
   * The checks qemu-img makes before the new file exists: the format's
   * early ones ({@link FormatDriver.validateCreate}), then the file
   * protocol's (`simple` for a device or an export). The format checks the
   * rest while creating.
   *
   * @throws {InvalidArgumentError} and {@link vdisk!UnsupportedError | UnsupportedError} with qemu-img's messages
   */
  validateCreate(driver: FormatDriver, size: number, values: ReadonlyMap<string, OptionValue>, protocol: CreateProtocol = 'file'): void {
    driver.validateCreate?.(size, values);
    checkProtocolCreateOptions(values, new Set(driver.createOptions.map((o) => o.name)), protocol);
  }
}

/** The registry every call uses unless given another. */
export const defaultRegistry = new DriverRegistry();
