/** `qemu-img info` human output (7.2 layout). */
import { formatSize } from '../core/sizes.js';
import type { ImageInfo, ImageSnapshotInfo } from '../jobs/info.js';
import { toQemuJson, type QemuJsonObject } from '../jobs/qemu-output.js';

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time as `YYYY-MM-DD HH:MM:SS` (g_date_time_format in the local zone, as qemu-img). */
function localDate(sec: number): string {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** The 7.2 snapshot table header (`%-10s%-17s%8s%20s%13s%11s`). */
export function snapshotHeader(): string {
  return 'ID'.padEnd(10) + 'TAG'.padEnd(17) + 'VM SIZE'.padStart(8) + 'DATE'.padStart(20) + 'VM CLOCK'.padStart(13) + 'ICOUNT'.padStart(11);
}

/** One 7.2 snapshot row (`%-9s %-16s %8s%20s%13s%11s`). */
export function snapshotRow(s: ImageSnapshotInfo): string {
  const ns = s.vmClockSec * 1e9 + s.vmClockNsec;
  const secs = Math.floor(ns / 1e9);
  const clock = `${pad2(Math.floor(secs / 3600))}:${pad2(Math.floor(secs / 60) % 60)}:${pad2(secs % 60)}.${String(Math.floor(ns / 1e6) % 1000).padStart(3, '0')}`;
  const icount = s.icount === undefined ? '' : String(s.icount);
  return (
    s.id.padEnd(9) + ' ' + s.name.padEnd(16) + ' ' + formatSize(s.vmStateSize).padStart(8) +
    localDate(s.dateSec).padStart(20) + clock.padStart(13) + icount.padStart(11)
  );
}

function scalar(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

/** QEMU's dump_qobject over the format-specific data as `toQemuJson` gives it (keys in QDict order, dashes as spaces). */
function dumpObject(value: unknown, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent * 4);
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const composite = typeof v === 'object' && v !== null;
      if (composite) {
        lines.push(`${pad}[${i}]:`);
        dumpObject(v, indent + 1, lines);
      } else {
        lines.push(`${pad}[${i}]: ${scalar(v)}`);
      }
    });
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj).filter((k) => obj[k] !== undefined)) {
    const v = obj[key];
    const name = key.replaceAll('-', ' ');
    if (typeof v === 'object' && v !== null) {
      lines.push(`${pad}${name}:`);
      dumpObject(v, indent + 1, lines);
    } else {
      lines.push(`${pad}${name}: ${scalar(v)}`);
    }
  }
}

/** One image's human `info` block (no trailing newline). */
export function formatInfoHuman(info: ImageInfo): string {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatSize(info.virtualSize)} (${info.virtualSize} bytes)`,
    `disk size: ${info.actualSize === undefined ? 'unavailable' : formatSize(info.actualSize)}`,
  ];
  if (info.encrypted) lines.push('encrypted: yes');
  if (info.clusterSize !== undefined) lines.push(`cluster_size: ${info.clusterSize}`);
  if (info.dirtyFlag) lines.push('cleanly shut down: no');
  if (info.backingFilename !== undefined) {
    let line = `backing file: ${info.backingFilename}`;
    const full = info.fullBackingFilename;
    if (full === undefined) line += ' (cannot determine actual path)';
    else if (full !== info.backingFilename) line += ` (actual path: ${full})`;
    lines.push(line);
    if (info.backingFilenameFormat !== undefined) lines.push(`backing file format: ${info.backingFilenameFormat}`);
  }
  if (info.snapshots) {
    lines.push('Snapshot list:', snapshotHeader());
    for (const s of info.snapshots) lines.push(snapshotRow(s));
  }
  const specific = toQemuJson(info)['format-specific'] as QemuJsonObject | undefined;
  if (specific) {
    lines.push('Format specific information:');
    dumpObject(specific['data'], 1, lines);
  }
  return lines.join('\n');
}
