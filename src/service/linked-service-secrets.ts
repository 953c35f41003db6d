/**
 * Secrets of linked services kept in the service (credential place "service", DESIGN.md section 5):
 * split from the properties on the way in, sealed with the master key, opened only to build a task
 * for a node, and then sealed again, to that node's key, for that attempt (claim-tasks.ts): they
 * leave the service only in that form. The API never returns them.
 */
import type { Kysely } from 'kysely';
import type { Schema } from './store/schema.ts';
import { SECRET_PROPERTIES, isStoreType } from '../protocol/stores.ts';
import { seal, unseal } from '../common/crypto.ts';
import { getLinkedService } from './store/queries/linked-services.ts';
import type { EndpointResolver, ResolvedForNode } from './store/queries/claim-tasks.ts';
import type { CopyActivityT } from '../protocol/pipeline.ts';

export function secretNames(type: string): readonly string[] {
  return isStoreType(type) ? SECRET_PROPERTIES[type] : [];
}

export function splitSecrets(
  masterKey: Buffer,
  type: string,
  properties: Record<string, unknown>,
): { plain: Record<string, unknown>; sealed: string | null } {
  const names = secretNames(type);
  const plain: Record<string, unknown> = {};
  const secret: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(properties)) (names.includes(k) ? secret : plain)[k] = v;
  return { plain, sealed: Object.keys(secret).length > 0 ? seal(masterKey, JSON.stringify(secret)) : null };
}

export function endpointResolver(masterKey: Buffer): EndpointResolver {
  const one = async (db: Kysely<Schema>, endpoint: CopyActivityT['source']): Promise<ResolvedForNode> => {
    const ls = await getLinkedService(db, endpoint.linkedService);
    const secrets = ls.secret_sealed
      ? (JSON.parse(unseal(masterKey, ls.secret_sealed)) as Record<string, unknown>)
      : {};
    const { linkedService: _ignored, ...options } = endpoint;
    return {
      type: ls.type,
      linkedService: ls.name,
      properties: JSON.parse(ls.properties_json) as Record<string, unknown>,
      options,
      secrets,
    };
  };
  return async (db, activity) => ({
    source: await one(db, activity.source),
    sink: await one(db, activity.sink),
  });
}
