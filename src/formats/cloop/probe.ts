/**
 * cloop signature, as QEMU's cloop_probe: the V2.0 shell preamble at the
 * start (compared over at most the bytes given). A weak match: score 2.
 */
const PREAMBLE = '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n';

/** Score for the first bytes of a file: 2 for a cloop image, 0 otherwise. Never throws. */
export function probeCloop(head: Uint8Array): number {
  const n = Math.min(PREAMBLE.length, head.length);
  for (let i = 0; i < n; i++) if (head[i] !== PREAMBLE.charCodeAt(i)) return 0;
  return 2;
}
