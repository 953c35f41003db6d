/**
 * Node versions are semantic versions (https://semver.org): MAJOR.MINOR.PATCH, an optional
 * pre-release (`-rc.1`) and optional build metadata (`+sha.5114f85`). Anything else (`latest`, `1.2`,
 * `v1.2.3`, `01.2.3`) is refused where a node states its version, so that every version the service
 * stores can be compared.
 */
import { Type } from 'typebox';

/** The regular expression semver.org gives for a valid version, anchored. */
export const SEMVER_PATTERN =
  '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)' +
  '(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?' +
  '(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$';

const SEMVER = new RegExp(SEMVER_PATTERN);

/** What a refused version is told (with the field's name in front). */
export const SEMVER_MEANING = 'must be a semantic version, MAJOR.MINOR.PATCH such as 1.4.0';

/** A node's version in a message: a semantic version, at most 64 characters. */
export const VersionSchema = Type.String({ maxLength: 64, pattern: SEMVER_PATTERN });

export function isSemver(v: string): boolean {
  return v.length <= 64 && SEMVER.test(v);
}

/**
 * Semantic version precedence: -1, 0 or 1. MAJOR, MINOR and PATCH compare as numbers; a pre-release
 * is lower than its release (1.0.0-rc.1 < 1.0.0), and its dot-separated identifiers compare as
 * numbers when numeric, as text otherwise (numeric ones lower); build metadata is ignored. A value
 * that is not a semantic version (none is stored since versions are checked on the way in) compares
 * by its dotted parts, numerically where they are numbers.
 */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (!ma || !mb) return compareDotted(a, b);
  for (let i = 1; i <= 3; i++) {
    const c = Math.sign(Number(ma[i]) - Number(mb[i]));
    if (c !== 0) return c;
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const ia = pa.split('.');
  const ib = pb.split('.');
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    const x = ia[i];
    const y = ib[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    const c = nx && ny ? Math.sign(Number(x) - Number(y)) : nx ? -1 : ny ? 1 : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

function compareDotted(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isFinite(nx) && Number.isFinite(ny) ? Math.sign(nx - ny) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}
