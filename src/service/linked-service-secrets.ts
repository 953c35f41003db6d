/**
 * Secrets of linked services kept in the service (credential place "service", DESIGN.md section 5):
 * split from the properties on the way in, sealed with the master key, opened only to build a task
 * for a node, and then sealed again, to that node's key, for that attempt (claim-tasks.ts): they
 * leave the service only in that form. The API never returns them.
 *
 * A linked service whose credentials live in the gateway (protocol/credentials.ts) has none here:
 * its endpoint names the version of the gateway's credentials a node must hold to run it.
 */
import type { Kysely } from 'kysely';
import type { LinkedServicesTable, Schema } from './store/schema.ts';
import { SECRET_PROPERTIES, isStoreType } from '../protocol/stores.ts';
import { seal, unseal } from '../common/crypto.ts';
import { getLinkedService } from './store/queries/linked-services.ts';
import type { ResolvedEndpointT } from '../protocol/task.ts';
import { sealSecrets, type SecretEndpoint } from '../protocol/sealed-secrets.ts';
import { FerryError } from '../common/errors.ts';
import { JSON_COLUMNS } from './store/json-column.ts';
import type { CopyActivityT } from '../protocol/pipeline.ts';

/**
 * An endpoint as the service resolves it. Its `secrets` never go out as they are: each attempt gets
 * them sealed to the node that runs it (sealedSecrets), and only that node can open them.
 */
export type ResolvedForNode = ResolvedEndpointT & {
  secrets?: Record<string, unknown>;
  /** Its secret values are in the gateway's credential set, not in the service. */
  gatewayHeld?: boolean;
  /** The first version of them that counts for this linked service (store migration 009). */
  credentialFloor?: number;
};

/**
 * Resolves an activity's source and sink (linked services with secrets) for a node. It reads through
 * the claim's transaction: SQLite has one connection, so reading outside it would wait on itself.
 */
export type EndpointResolver = (
  db: Kysely<Schema>,
  activity: CopyActivityT,
) => Promise<{ source: ResolvedForNode; sink: ResolvedForNode }>;

export function hasSecrets(e: ResolvedForNode): boolean {
  return e.secrets !== undefined && Object.keys(e.secrets).length > 0;
}

/**
 * The endpoint as the node gets it: secrets sealed to its key, for this attempt (or connection test)
 * only; or, held by the gateway, the version of them the node must hold (`credentialVersion`).
 */
export function sealedFor(
  e: ResolvedForNode,
  sealPublicKey: string | null,
  attemptId: string,
  which: SecretEndpoint,
  credentialVersion = 1,
): ResolvedEndpointT {
  const { secrets, gatewayHeld, credentialFloor, ...endpoint } = e;
  if (gatewayHeld === true)
    return { ...endpoint, credentials: { version: Math.max(credentialVersion, credentialFloor ?? 1) } };
  if (secrets === undefined || Object.keys(secrets).length === 0) return endpoint;
  if (sealPublicKey === null) throw new FerryError('internal', 'no seal key for the node'); // filtered before
  return { ...endpoint, sealedSecrets: sealSecrets(sealPublicKey, secrets, attemptId, which) };
}

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

/**
 * A linked service as a node gets it, with `options` for the activity's endpoint, before its secret
 * values are sealed to the node (open here, only in the service's memory).
 */
export function resolveLinkedService(
  masterKey: Buffer,
  ls: LinkedServicesTable,
  options: Record<string, unknown>,
): ResolvedForNode {
  return {
    type: ls.type,
    linkedService: ls.name,
    properties: JSON_COLUMNS.linkedServiceProperties.read(ls.properties_json, ls.name),
    options,
    ...(ls.credentials === 'gateway' ? { gatewayHeld: true, credentialFloor: ls.credential_floor } : {}),
    secrets: ls.secret_sealed
      ? JSON_COLUMNS.linkedServiceSecrets.read(unseal(masterKey, ls.secret_sealed), ls.name)
      : {},
  };
}

export function endpointResolver(masterKey: Buffer): EndpointResolver {
  const one = async (db: Kysely<Schema>, endpoint: CopyActivityT['source']): Promise<ResolvedForNode> => {
    const { linkedService, ...options } = endpoint;
    return resolveLinkedService(masterKey, await getLinkedService(db, linkedService), options);
  };
  return async (db, activity) => ({
    source: await one(db, activity.source),
    sink: await one(db, activity.sink),
  });
}
