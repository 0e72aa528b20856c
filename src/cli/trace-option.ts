/**
 * The global `-T`/`--trace` option. vdisk has none of qemu's trace events
 * (it traces with NODE_DEBUG=vdisk), so every event the option names is one
 * that does not exist: warned about as qemu-img warns about an unknown
 * event, then the command runs. Patterns (`*`) match nothing, silently.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { PROG, type CliIo } from './context.js';
import { strerror } from '../core/strerror.js';

/** A `-T` value qemu-img refuses, or an `events=` file it cannot read: printed as is, exit 1. */
export class TraceOptionError extends Error {}

/** `where` is qemu's location prefix (`file:line:`) for a pattern read from an events file. */
function enable(pattern: string, io: CliIo, where = ''): void {
  const name = pattern.startsWith('-') ? pattern.slice(1) : pattern;
  if (name === '' || name.includes('*')) return;
  io.stderr(`${PROG}:${where} warning: trace event '${name}' does not exist\n`);
}

/** An `events=` file: one pattern a line, `#` comments and empty lines skipped. */
function eventsFile(file: string, io: CliIo): void {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (err) {
    throw new TraceOptionError(`${PROG}:${file}: ${strerror((err as NodeJS.ErrnoException).code)}`);
  }
  // Read as qemu reads it (fgets): each line's last character is cut, newline or not, nothing trimmed.
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  lines.forEach((line, i) => {
    if (line.startsWith('#') || line === '\n') return;
    enable(line.length > 1 ? line.slice(0, -1) : line, io, `${file}:${i + 1}:`);
  });
}

/** The `file=` trace log: opened for writing as qemu opens it (emptied), though vdisk writes nothing there. */
function logFile(file: string): void {
  try {
    writeFileSync(file, '');
  } catch (err) {
    throw new TraceOptionError(`${PROG}: Error opening logfile ${file}: ${strerror((err as NodeJS.ErrnoException).code)}`);
  }
}

/**
 * Applies one `-T` value (`[enable=]pattern`, `events=file`, `file=file`,
 * comma-separated, parsed whole first as qemu's option parser does).
 * `help` lists qemu's events, of which vdisk has none.
 */
export function applyTraceOption(value: string, io: CliIo): void {
  const parts = value.split(',').map((part, i) => {
    const eq = part.indexOf('=');
    if (eq >= 0) return [part.slice(0, eq), part.slice(eq + 1)] as const;
    if (i === 0) return ['enable', part] as const;
    // qemu takes a later bare word for a short-form boolean, which no trace option is.
    io.stderr(`${PROG}: warning: short-form boolean option '${part}' deprecated\nPlease use ${part}=on instead\n`);
    throw new TraceOptionError(`${PROG}: Invalid parameter '${part}'`);
  });
  for (const [key] of parts) if (!['enable', 'events', 'file'].includes(key)) throw new TraceOptionError(`${PROG}: Invalid parameter '${key}'`);
  for (const [key, v] of parts) {
    if (key === 'enable' && v !== 'help') enable(v, io);
    else if (key === 'events') eventsFile(v, io);
  }
  // qemu opens the log once its options are parsed, after the events are enabled.
  const file = parts.filter(([k]) => k === 'file').at(-1);
  if (file) logFile(file[1]);
}
