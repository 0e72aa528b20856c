/**
 * Fuzzing the image-name parsers (`json:{...}` and `--image-opts`): any
 * text gives flat options or an InvalidArgumentError, never a crash or a
 * hang; what qemu's JSON writer prints parses back to the same options;
 * and a bounded sample of mutated inputs gets the same verdict from
 * qemu-img (parse error or not, and the same message).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { replaceEscapes } from '../../src/core/byte-names.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { parseImageOptsString, parseJsonName } from '../../src/core/image-options.js';
import { qdictToJson } from '../../src/core/qdict.js';
import { formatDouble, parseQemuJson } from '../../src/core/qemu-json.js';
import { iterations, rng } from '../helpers/fuzz.js';
import { hasQemu } from '../helpers/qemu.js';

const SEEDS = [
  '{"driver":"qcow2","file":{"driver":"file","filename":"x.qcow2"},"l2-cache-size":1048576}',
  "{'driver':'raw','offset':512,'file.filename':'r.raw','backing':null}",
  '{"a":[1,{"b":true},"\\u00e9\\ud83d\\ude00"],"c":-0.5e3,"d":false}',
  '{"x":12345678901234567890123,"y":"\\"\\\\\\/\\b\\f\\n\\r\\t"}',
];
const PIECES = ['{', '}', '[', ']', ',', ':', '"', "'", '\\', 'u', 'true', 'null', '-', '0', '1e', '.', ' ', '\t', '@', '%', 'x', '\u00e9', '\n'];

function mutateText(text: string, next: () => number): string {
  let s = text;
  const edits = 1 + Math.floor(next() * 3);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * (s.length + 1));
    const op = Math.floor(next() * 3);
    const piece = PIECES[Math.floor(next() * PIECES.length)] as string;
    if (op === 0) s = s.slice(0, at) + piece + s.slice(at);
    else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(next() * 4));
    else s = s.slice(0, at) + piece + s.slice(at + 1);
  }
  return s;
}

/** A parse result as comparable data: the flat options, or the error message. */
function verdict(fn: () => { options: { entries(): [string, unknown][] } }): string {
  try {
    return JSON.stringify(fn().options.entries());
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, `unexpected ${String(err)}`);
    return `error: ${err.message}`;
  }
}

describe('image name parsers', () => {
  it('json: names: flat options or a typed error, for any mutation', () => {
    const next = rng(13);
    for (let i = 0; i < iterations(4000); i++) {
      const text = mutateText(SEEDS[i % SEEDS.length] as string, next);
      verdict(() => parseJsonName(`json:${text}`));
    }
  });

  it('--image-opts strings: flat options or a typed error, for any text', () => {
    const next = rng(14);
    const alphabet = 'ab=,.-_ 0x1noid?help';
    for (let i = 0; i < iterations(4000); i++) {
      let s = '';
      const n = Math.floor(next() * 30);
      for (let k = 0; k < n; k++) s += alphabet[Math.floor(next() * alphabet.length)];
      const r = verdict(() => parseImageOptsString(s));
      // A key `id` comes only from an `id=…` or bare `id`/`noid` option (a value "id" is no key).
      const keys = r.startsWith('error') ? [] : (JSON.parse(r) as [string, unknown][]).map(([k]) => k);
      if (keys.includes('id')) assert.ok(/(^|,)id=/.test(s) || /(^|,)(no)?id(,|$)/.test(s), s);
    }
  });

  it("qemu's printed JSON parses back to the same value", () => {
    const next = rng(15);
    for (let i = 0; i < iterations(2000); i++) {
      const text = mutateText(SEEDS[i % SEEDS.length] as string, next);
      let first;
      try {
        first = parseJsonName(`json:${text}`);
      } catch {
        continue;
      }
      const printed = qdictToJson(first.options);
      // doubles out of range print as inf/nan, which qemu cannot read back either
      if (/: -?(inf|nan)\b/.test(printed)) continue;
      // a double -0 prints as -0, which reads back as the integer 0, in qemu too
      if (/(?<![\d.])-0(?![\d.eE])/.test(printed)) continue;
      const again = parseJsonName(`json:${printed}`);
      // same keys and values; keys sharing a hash bucket may come back in another order, as in qemu
      const sorted = (o: typeof first.options): string => JSON.stringify(o.entries().sort((a, b) => (a[0] < b[0] ? -1 : 1)));
      assert.equal(sorted(again.options), sorted(first.options), text);
    }
  });

  it('doubles print as C %.17g', () => {
    assert.equal(formatDouble(0.1), '0.10000000000000001');
    assert.equal(formatDouble(1000), '1000');
    assert.equal(formatDouble(1.2345678901234568e22), '1.2345678901234568e+22');
    assert.equal(formatDouble(1.5e-7), '1.4999999999999999e-07');
    assert.deepEqual(parseQemuJson('12345678901234567890'), { num: '12345678901234567890' });
    assert.deepEqual(parseQemuJson('-0'), { num: '0' });
  });

  it('a bounded sample gets the same verdict from qemu-img', { skip: hasQemu ? false : 'qemu-img not installed' }, () => {
    const next = rng(16);
    for (let i = 0; i < 60; i++) {
      const text = mutateText(SEEDS[i % SEEDS.length] as string, next);
      const ours = verdict(() => parseJsonName(`json:${text}`));
      const q = spawnSync('qemu-img', ['info', `json:${text}`], { encoding: 'utf8' });
      const theirs = /Could not open '.*?': ((?:Could not parse the JSON options|Invalid JSON object given).*)/s.exec(q.stderr)?.[1]?.trim();
      // qemu-img prints a stray byte that is not UTF-8 as itself; decoded here, it reads as U+FFFD, as vdisk's escape does.
      if (ours.startsWith('error: ')) assert.equal(replaceEscapes(ours.slice('error: '.length)), theirs, `json:${text}`);
      else assert.equal(theirs, undefined, `json:${text}: qemu-img refuses to parse it`);
    }
  });
});
