/**
 * Opens the secret values of a task into the spec the connectors get: sealed by the service to this
 * node's seal key for one attempt, or (a linked service that keeps its credentials in the gateway)
 * taken from this node's own credential set (credential-store.ts). Called right before the task
 * runs; the opened spec lives only in that call, never in the worker's records, a log line or a report.
 */
import type { ResolvedEndpointT, TaskSpecT } from '../protocol/task.ts';
import { openSecrets, type SecretEndpoint } from '../protocol/sealed-secrets.ts';
import { FerryError } from '../common/errors.ts';
import type { CredentialStore } from './credential-store.ts';
import { endpointChanges } from '../protocol/credentials.ts';

export type SecretOpener = (spec: TaskSpecT, attemptId: string) => TaskSpecT;

/** What opens an endpoint's secrets on this node. */
export interface SecretKeys {
  sealPrivateKey: string;
  credentials: CredentialStore;
}

/** An endpoint with its secret values opened into its properties (sealed for `id`: an attempt or a test). */
export function openEndpoint(
  keys: SecretKeys,
  e: ResolvedEndpointT,
  id: string,
  which: SecretEndpoint,
): ResolvedEndpointT {
  if (e.credentials !== undefined) {
    const { credentials, ...endpoint } = e;
    const held = keys.credentials.get(e.linkedService);
    if (!held || held.version < credentials.version)
      throw new FerryError(
        'unavailable',
        `this node holds ${held ? `version ${held.version}` : 'no version'} of the credentials of linked service "${e.linkedService}"; the task needs version ${credentials.version}`,
        {
          retryable: true,
          hint: 'the dispatcher pushes them within a heartbeat; if it stays so, run `ferry gateway resync-credentials GATEWAY`',
        },
      );
    // Only for the endpoint they were set for: a linked service pointed elsewhere since (another
    // host, user, database...) does not get them sent there.
    const changed = endpointChanges(held.endpoint ?? { type: '', properties: {} }, {
      type: e.type,
      properties: e.properties,
    });
    if (changed.length > 0)
      throw new FerryError(
        'conflict',
        `linked service "${e.linkedService}" has changed (${changed.join(', ')}) since its credentials were set: this node does not send them to an endpoint they were not set for`,
        { hint: `if the change is yours, set them again: \`ferry credential set ${e.linkedService}\`` },
      );
    return { ...endpoint, properties: { ...endpoint.properties, ...held.values } };
  }
  if (e.sealedSecrets === undefined) return e;
  const { sealedSecrets, ...endpoint } = e;
  const secrets = openSecrets(keys.sealPrivateKey, sealedSecrets, id, which);
  return { ...endpoint, properties: { ...endpoint.properties, ...secrets } };
}

export function secretOpener(keys: SecretKeys): SecretOpener {
  return (spec, attemptId) => ({
    ...spec,
    source: openEndpoint(keys, spec.source, attemptId, 'source'),
    sink: openEndpoint(keys, spec.sink, attemptId, 'sink'),
  });
}
