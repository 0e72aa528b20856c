/**
 * Backing chains: commit (into the direct and a deeper backing file, -d,
 * -b misuse) and rebase (safe and -u, new/removed/missing backing files),
 * plus images with no backing file and formats without rebase.
 */
import { img, makeCase, qemuIo } from './case-kit.js';
import type { Case } from './types.js';

const OVERLAYS = ['c3-top.qcow2', 'c-over.qcow2', 'c-el2.qcow2'];

function commitCases(): Case[] {
  const out: Case[] = [];
  const flags = [[], ['-d'], ['-p'], ['-q'], ['-r', '1M'], ['-r', 'abc'], ['-t', 'none'], ['-t', 'writeback'], ['-t', 'bogus'], ['-f', 'qcow2'], ['-f', 'raw']];
  for (const top of OVERLAYS) for (const f of flags) out.push(makeCase('commit', [top], [img('commit', ...f, top)]));
  for (const b of ['c3-base.qcow2', 'c3-mid.qcow2', 'c3-top.qcow2', 'nosuch.qcow2', 'q-v3.qcow2', '']) {
    const inputs = b === 'q-v3.qcow2' ? ['c3-top.qcow2', b] : ['c3-top.qcow2'];
    out.push(makeCase('commit', inputs, [img('commit', '-b', b, 'c3-top.qcow2')]));
    out.push(makeCase('commit', inputs, [img('commit', '-d', '-b', b, 'c3-top.qcow2')]));
  }
  out.push(makeCase('commit', ['c3-top.qcow2'], [img('commit', '-b', 'c3-mid.qcow2', 'c3-mid.qcow2')]));
  for (const f of ['q-v3.qcow2', 'r-data.raw', 'v-sparse.vmdk', 'q-snap.qcow2', 'q-bm.qcow2']) out.push(makeCase('commit', [f], [img('commit', f)]));
  // data written after the chain was made, then committed twice
  for (const top of OVERLAYS) {
    const w = qemuIo('qcow2', top, 'write -P 0xe1 0 96k', 'write -z 1M 64k', 'write -P 0xe2 3999744 512');
    out.push(makeCase('commit', [top], [w, img('commit', top), img('commit', top)]));
  }
  return out;
}

function rebaseCases(): Case[] {
  const out: Case[] = [];
  const targets: [string, string[]][] = [
    ['c3-base.qcow2', ['-F', 'qcow2']], ['', []], ['r-data.raw', ['-F', 'raw']], ['q-v3.qcow2', ['-F', 'qcow2']], ['nosuch.qcow2', ['-F', 'qcow2']],
    ['c3-base.qcow2', []], ['r-ones.raw', ['-F', 'raw']], ['r-zero.raw', ['-F', 'raw']], ['q-odd.qcow2', ['-F', 'qcow2']], ['c3-top.qcow2', ['-F', 'qcow2']],
    ['v-sparse.vmdk', ['-F', 'vmdk']], ['c3-mid.qcow2', ['-F', 'raw']], ['r-1t.raw', ['-F', 'raw']],
  ];
  const extraInputs = (b: string): string[] => (['r-data.raw', 'q-v3.qcow2', 'r-ones.raw', 'r-zero.raw', 'q-odd.qcow2', 'v-sparse.vmdk', 'r-1t.raw'].includes(b) ? [b] : []);
  for (const top of [...OVERLAYS, 'q-v3.qcow2', 'q-el2.qcow2', 'q-zlib.qcow2', 'q-snap.qcow2']) {
    for (const [b, f] of targets) {
      if (top.startsWith('c3') !== b.startsWith('c3') && b.startsWith('c3')) continue;
      const inputs = [top, ...extraInputs(b)];
      out.push(makeCase('rebase', inputs, [img('rebase', '-b', b, ...f, top)]));
      out.push(makeCase('rebase', inputs, [img('rebase', '-u', '-b', b, ...f, top)]));
    }
  }
  const flags = [['-p'], ['-q'], ['-t', 'none'], ['-T', 'none'], ['-t', 'bogus'], ['-U'], ['-c'], ['-f', 'qcow2'], ['-u', '-f', 'raw']];
  for (const f of flags) out.push(makeCase('rebase', ['c3-top.qcow2'], [img('rebase', ...f, '-b', 'c3-base.qcow2', '-F', 'qcow2', 'c3-top.qcow2')]));
  out.push(makeCase('rebase', ['c3-top.qcow2'], [img('rebase', 'c3-top.qcow2')]));
  for (const f of ['r-data.raw', 'v-sparse.vmdk', 'p-dyn.vhd', 'x-dyn.vhdx', 'd-dyn.vdi', 'u.qed']) {
    out.push(makeCase('rebase', [f, 'q-v3.qcow2'], [img('rebase', '-u', '-b', 'q-v3.qcow2', '-F', 'qcow2', f)]));
  }
  return out;
}

/** Every commit and rebase case. */
export function chainCases(): Case[] {
  return [...commitCases(), ...rebaseCases()];
}
