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

/** A compiled validator whose error names the offending field, e.g. `activities/0/source/table: ...`. */
export interface Validator<T extends TSchema> {
  readonly schema: T;
  check(value: unknown): value is Static<T>;
  /**
   * Returns the value typed, or throws a bad_request FerryError naming the first wrong field:
   * `<what>: <prefix>/<path>: <problem>`.
   */
  parse(value: unknown, what: string, prefix?: string): Static<T>;
}

export function validator<T extends TSchema>(schema: T): Validator<T> {
  const compiled = Compile(schema);
  return {
    schema,
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    parse(value: unknown, what: string, prefix = ''): Static<T> {
      if (compiled.Check(value)) return value;
      const first =
        [...compiled.Errors(value)].find((e) => e.keyword !== 'boolean') ?? [...compiled.Errors(value)][0];
      throw new FerryError('bad_request', `${what}: ${describeError(first, prefix)}`);
    },
  };
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function describeError(e: SchemaError | undefined, prefix: string): string {
  if (!e) return `${prefix || '(root)'}: invalid`;
  const path = [prefix, e.instancePath.replace(/^\//, '')].filter((x) => x !== '').join('/');
  if (e.keyword === 'required') {
    const missing = (e.params['requiredProperties'] as string[] | undefined)?.[0] ?? '';
    return `${path ? `${path}/` : ''}${missing}: is required`;
  }
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params['additionalProperties'] as string[] | undefined)?.[0] ?? '';
    return `${path ? `${path}/` : ''}${extra}: is not a known field`;
  }
  return `${path || '(root)'}: ${errorMeaning(e)}`;
}
