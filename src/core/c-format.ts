/**
 * Number formatting as C's printf does it. JavaScript's toFixed and
 * toPrecision break exact ties upwards; glibc rounds the exact binary
 * value, so a tie (192.5, 3.125) goes to the even digit. qemu-img's
 * outputs (sizes, check percentages, progress) depend on that.
 */

/** The exact decimal expansion of |value| (every binary fraction has one). */
function exactDigits(value: number): string {
  return Math.abs(value).toFixed(100);
}

/**
 * `value` moved down to its truncation when rounding it at `cut` (the
 * index in its exact expansion after which digits are dropped) is an exact
 * tie whose kept digit is even; otherwise `value` itself.
 */
function tieToEven(value: number, fixed: string, cut: number): number {
  const rest = fixed.slice(cut).replace('.', '');
  if (!/^50*$/.test(rest)) return value;
  const kept = fixed.slice(0, cut).replace(/\.$/, '');
  const last = kept.replace('.', '').at(-1) ?? '0';
  if (Number(last) % 2 !== 0) return value;
  const truncated = Number(kept);
  return value < 0 ? -truncated : truncated;
}

/** `printf("%.Nf")`: `digits` decimals, exact ties to even. */
export function cFixed(value: number, digits: number): string {
  if (!Number.isFinite(value) || Math.abs(value) >= 1e21) return value.toFixed(digits);
  const fixed = exactDigits(value);
  const dot = fixed.indexOf('.');
  const cut = digits === 0 ? dot : dot + 1 + digits;
  return tieToEven(value, fixed, cut).toFixed(digits);
}

/**
 * `value` with exact ties at `significant` digits moved to the even side,
 * so that toPrecision/toExponential then round it as printf's %g does.
 */
export function cTiesToEven(value: number, significant: number): number {
  if (value === 0 || !Number.isFinite(value) || Math.abs(value) >= 1e21) return value;
  const fixed = exactDigits(value);
  let seen = 0;
  let cut = -1;
  let started = false;
  for (let i = 0; i < fixed.length; i++) {
    const ch = fixed[i];
    if (ch === '.') continue;
    if (!started && ch === '0') continue;
    started = true;
    if (++seen === significant) {
      cut = i + 1;
      break;
    }
  }
  return cut < 0 ? value : tieToEven(value, fixed, cut);
}
