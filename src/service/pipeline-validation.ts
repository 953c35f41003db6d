/**
 * Checks a pipeline before it is stored: its shape, then each activity against the store contract of
 * its linked services. Every problem is reported at once, each naming its field, e.g.
 * `activities/0/source/table: is required`.
 */
import type { Kysely } from 'kysely';
import type { Schema } from './store/schema.ts';
import { findLinkedService } from './store/queries/linked-services.ts';
import { PipelineSpec, type PipelineSpecT } from '../protocol/pipeline.ts';
import { STORES, isStoreType, pathProblem } from '../protocol/stores.ts';
import { problemsError, validator } from '../protocol/validate.ts';
import type { TSchema } from 'typebox';

const pipelineValidator = validator(PipelineSpec);
const endpointValidators = new Map<TSchema, ReturnType<typeof validator>>();

function endpointValidator(schema: TSchema): ReturnType<typeof validator> {
  let v = endpointValidators.get(schema);
  if (!v) endpointValidators.set(schema, (v = validator(schema)));
  return v;
}

export async function validatePipeline(db: Kysely<Schema>, input: unknown): Promise<PipelineSpecT> {
  const spec = pipelineValidator.parse(input, 'pipeline');
  // Every problem of every activity, reported at once.
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, activity] of spec.activities.entries()) {
    const at = `activities/${i}`;
    if (seen.has(activity.name)) problems.push(`${at}/name: "${activity.name}" is used by two activities`);
    seen.add(activity.name);
    const gateways = new Set<string>();
    const kinds: Partial<Record<'source' | 'sink', 'files' | 'table'>> = {};
    for (const role of ['source', 'sink'] as const) {
      const endpoint = activity[role];
      const ls = await findLinkedService(db, endpoint.linkedService);
      if (!ls) {
        problems.push(
          `${at}/${role}/linkedService: linked service "${endpoint.linkedService}" does not exist`,
        );
        continue;
      }
      if (!isStoreType(ls.type)) {
        problems.push(`${at}/${role}/linkedService: unknown store type ${ls.type}`);
        continue;
      }
      const schema = STORES[ls.type][role];
      if (!schema) {
        problems.push(`${at}/${role}: a ${ls.type} linked service cannot be a ${role} yet`);
        continue;
      }
      const wrong = endpointValidator(schema).problems(endpoint, `${at}/${role}`);
      problems.push(...wrong);
      const problem = wrong.length === 0 ? pathProblem(role, endpoint) : undefined;
      if (problem) problems.push(`${at}/${role}/${problem}`);
      gateways.add(ls.gateway_id);
      kinds[role] = STORES[ls.type].kind;
    }
    if (
      kinds.sink === 'table' &&
      kinds.source === 'files' &&
      (activity.source as Record<string, unknown>)['format'] === undefined
    ) {
      problems.push(
        `${at}/source/format: the sink loads a table, so the source's files need a format to be read as one (csv, jsonl or parquet)`,
      );
    }
    if (gateways.size > 1) {
      problems.push(
        `${at}: source and sink use linked services on different gateways; one activity runs on one gateway`,
      );
    }
  }
  if (problems.length > 0) throw problemsError('pipeline', problems);
  return spec;
}
