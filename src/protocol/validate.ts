import { Compile } from 'typebox/compile';
import type { Static, TSchema } from 'typebox';
import { FerryError } from '../common/errors.ts';
import { SEMVER_MEANING, SEMVER_PATTERN } from './version.ts';

/** What a value failing one of these patterns is told, instead of the pattern itself. */
const PATTERN_MEANINGS: ReadonlyMap<string, string> = new Map([[SEMVER_PATTERN, SEMVER_MEANING]]);

/** A schema error's message, in words where the raw one would show a regular expression. */
export function errorMeaning(e: { keyword: string; params: unknown; message?: string | undefined }): string {
  if (e.keyword === 'pattern') {
    const meaning = PATTERN_MEANINGS.get(String((e.params as { pattern?: unknown } | null)?.pattern));
    if (meaning) return meaning;
  }
  return e.message ?? 'is not valid';
}

/** A compiled validator whose errors name the offending fields, e.g. `activities/0/source/table: ...`. */
export interface Validator<T extends TSchema> {
  readonly schema: T;
  check(value: unknown): value is Static<T>;
  /** Every problem with the value, each naming its field (`<prefix>/<path>: <problem>`); none if valid. */
  problems(value: unknown, prefix?: string): string[];
  /**
   * Returns the value typed, or throws a bad_request FerryError naming every wrong field at once:
   * `<what>: <problem>`, or `<what>: N problems: <problem>; <problem>...`.
   */
  parse(value: unknown, what: string, prefix?: string): Static<T>;
}

/** One bad_request error for a list of problems, each naming its field. */
export function problemsError(what: string, problems: readonly string[]): FerryError {
  const text =
    problems.length === 1 ? (problems[0] ?? '') : `${problems.length} problems: ${problems.join('; ')}`;
  return new FerryError('bad_request', `${what}: ${text}`);
}

export function validator<T extends TSchema>(schema: T): Validator<T> {
  const compiled = Compile(schema);
  const problems = (value: unknown, prefix = ''): string[] =>
    compiled.Check(value) ? [] : describeErrors([...compiled.Errors(value)], schema, prefix);
  return {
    schema,
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    problems,
    parse(value: unknown, what: string, prefix = ''): Static<T> {
      if (compiled.Check(value)) return value;
      throw problemsError(what, problems(value, prefix));
    },
  };
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
}

/** The sub-schema a schema path names (`#/properties/activities/items`), if it can be followed. */
function schemaAt(root: unknown, schemaPath: string): unknown {
  let at: unknown = root;
  for (const part of schemaPath
    .replace(/^#\/?/, '')
    .split('/')
    .filter((x) => x !== '')) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return at;
}

/** Levenshtein distance, for "did you mean" (names are short). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] ?? 0;
      row[j] = Math.min(up + 1, (row[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length] ?? 0;
}

/** The known field an unknown one is most likely a misspelling of, if any is close enough. */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : distance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(1, Math.min(3, Math.floor(name.length / 3))) ? best : undefined;
}

function describeErrors(errors: SchemaError[], root: unknown, prefix: string): string[] {
  const join = (instancePath: string, field?: string): string =>
    [prefix, instancePath.replace(/^\//, ''), field ?? ''].filter((x) => x !== '').join('/');
  // A misspelt field explains the required one it stands for: said once, as "did you mean".
  const guesses = new Map<SchemaError, Map<string, string | undefined>>();
  const explained = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const props = (schemaAt(root, e.schemaPath) as { properties?: Record<string, unknown> } | undefined)
      ?.properties;
    const mine = new Map<string, string | undefined>();
    for (const extra of (e.params['additionalProperties'] as string[] | undefined) ?? []) {
      const guess = props ? nearest(extra, Object.keys(props)) : undefined;
      mine.set(extra, guess);
      if (guess) explained.add(join(e.instancePath, guess));
    }
    guesses.set(e, mine);
  }
  const out: string[] = [];
  for (const e of errors) {
    if (e.keyword === 'boolean') continue;
    if (e.keyword === 'additionalProperties') {
      for (const [extra, guess] of guesses.get(e) ?? [])
        out.push(
          `${join(e.instancePath, extra)}: is not a known field${guess ? ` (did you mean ${guess}?)` : ''}`,
        );
    } else if (e.keyword === 'required') {
      for (const missing of (e.params['requiredProperties'] as string[] | undefined) ?? []) {
        const field = join(e.instancePath, missing);
        if (!explained.has(field)) out.push(`${field}: is required`);
      }
    } else out.push(`${join(e.instancePath) || '(root)'}: ${errorMeaning(e)}`);
  }
  const unique = [...new Set(out)];
  return unique.length > 0 ? unique : [`${prefix || '(root)'}: invalid`];
}
