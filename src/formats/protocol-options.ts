import type { OptionSpec } from './driver.js';

/**
 * The `file` protocol's create options, which qemu-img appends to every
 * format's list (shown by `-o help` when a file name is given).
 */
export const FILE_PROTOCOL_OPTIONS: readonly OptionSpec[] = [
  { name: 'size', type: 'size', help: 'Virtual disk size' },
  { name: 'preallocation', type: 'string', help: 'Preallocation mode (allowed values: off, falloc, full)' },
  { name: 'nocow', type: 'bool', help: 'Turn off copy-on-write (valid only on btrfs)' },
  { name: 'extent_size_hint', type: 'size', help: 'Extent size hint for the image file, 0 to disable' },
];
