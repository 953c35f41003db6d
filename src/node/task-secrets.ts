/**
 * Opens the secret values of a task (sealed by the service to this node's seal key, for one attempt)
 * into the spec the connectors get. Called right before the task runs; the opened spec lives only in
 * that call, never in the worker's records, a log line or a report.
 */
import type { ResolvedEndpointT, TaskSpecT } from '../protocol/task.ts';
import { openSecrets, type SecretEndpoint } from '../protocol/sealed-secrets.ts';

export type SecretOpener = (spec: TaskSpecT, attemptId: string) => TaskSpecT;

/** An endpoint with its secret values opened into its properties (sealed for `id`: an attempt or a test). */
export function openEndpoint(
  sealPrivateKey: string,
  e: ResolvedEndpointT,
  id: string,
  which: SecretEndpoint,
): ResolvedEndpointT {
  if (e.sealedSecrets === undefined) return e;
  const { sealedSecrets, ...endpoint } = e;
  const secrets = openSecrets(sealPrivateKey, sealedSecrets, id, which);
  return { ...endpoint, properties: { ...endpoint.properties, ...secrets } };
}

export function secretOpener(sealPrivateKey: string): SecretOpener {
  const open = (e: ResolvedEndpointT, attemptId: string, which: SecretEndpoint): ResolvedEndpointT =>
    openEndpoint(sealPrivateKey, e, attemptId, which);
  return (spec, attemptId) => ({
    ...spec,
    source: open(spec.source, attemptId, 'source'),
    sink: open(spec.sink, attemptId, 'sink'),
  });
}
