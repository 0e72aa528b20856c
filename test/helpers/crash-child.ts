/**
 * Child process of the SIGKILL crash test: opens the qcow2 image given in
 * argv[2] read/write and runs the crash workload with seed argv[3] until
 * killed (it prints "ready" once the image is open).
 */
import { BlockDevice } from '../../src/block/device.js';
import { crashWorkload } from './crash-workload.js';

const [, , path, seed] = process.argv;
const dev = await BlockDevice.open(path!, { format: 'qcow2', readOnly: false });
process.stdout.write('ready\n');
for (let round = 0; ; round++) await crashWorkload(dev, Number(seed) * 1000 + round, 50);
