/**
 * Credentials held by the gateway (DESIGN.md section 5, the "gateway" place): a linked service's
 * secret values that the service never sees, not even encrypted with a key it holds.
 *
 * - The gateway has an X25519 key pair, made on its first node. The service keeps only the public
 *   half (the first one a node reports wins); every other node receives the private half from a
 *   node that holds it, sealed to its own seal key, over the signed node-to-node channel.
 * - Setting a credential: the service issues a grant (a version for one linked service, signed with
 *   the service's key, protocol/dispatcher-lease.ts) and the CLI seals the values to the gateway's
 *   public key, bound to (gateway, linked service, version). The box goes either straight to a node
 *   (`--node URL`, with the grant) or to the service, which relays what it cannot open to the
 *   dispatcher.
 * - Sync: each node reports which version of each linked service it holds; the dispatcher pulls a
 *   newer version from the node that has it and pushes its set to every worker behind it, each entry
 *   sealed to that worker's seal key and bound to it, the linked service and the version. A node
 *   takes an entry only if its version is higher than what it holds: an old box replayed changes
 *   nothing.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { NameSchema } from './stores.ts';
import { PublicKeyText } from './node-keys.ts';
import { signToken, verifyToken } from './dispatcher-lease.ts';
import { sealSecrets } from './sealed-secrets.ts';
import { FerryError } from '../common/errors.ts';

/** The most linked services one gateway's credential set may hold (a bound on every message). */
export const MAX_CREDENTIALS = 10_000;
/** A sealed box: the values of one linked service, or the gateway's private key. */
const Box = Type.String({ minLength: 1, maxLength: 256 * 1024 });

/** What a node holds: the gateway public key it has the private half of, and a version per linked service. */
export const NodeCredentials = Type.Object(
  {
    gatewayKey: Type.Union([PublicKeyText, Type.Null()]),
    versions: Type.Record(Type.String({ maxLength: 128 }), Type.Integer({ minimum: 1 }), {
      maxProperties: MAX_CREDENTIALS,
    }),
  },
  { additionalProperties: false },
);

export const CredentialEntry = Type.Object(
  { linkedService: NameSchema, version: Type.Integer({ minimum: 1 }), box: Box },
  { additionalProperties: false },
);

/** What the heartbeat reply tells a node about its gateway's credentials. */
export const GatewayCredentials = Type.Object({
  /** The gateway's public key (null until its first node made one: then make one and report it). */
  gatewayKey: Type.Union([PublicKeyText, Type.Null()]),
  /** To the dispatcher: credentials set through the service, sealed to the gateway key. */
  relays: Type.Array(CredentialEntry, { maxItems: MAX_CREDENTIALS }),
  /** Raised by `ferry gateway resync-credentials`: the dispatcher pushes its whole set again. */
  resync: Type.Integer({ minimum: 0 }),
});

/** Dispatcher -> worker: entries the worker is behind on (and the gateway key, if it lacks it). */
export const CredentialPush = Type.Object(
  {
    epoch: Type.Integer(),
    lease: Type.String({ maxLength: 4096 }),
    gatewayKey: Type.Optional(Box),
    entries: Type.Array(CredentialEntry, { maxItems: MAX_CREDENTIALS }),
  },
  { additionalProperties: false },
);

/** A node's answer to a push or a set: what it holds now. */
export const CredentialHeld = Type.Object({ credentials: NodeCredentials });

/** Dispatcher -> a node ahead of it: send me these (sealed to my seal key). */
export const CredentialPull = Type.Object(
  {
    gatewayKey: Type.Boolean(),
    linkedServices: Type.Array(NameSchema, { maxItems: MAX_CREDENTIALS }),
  },
  { additionalProperties: false },
);
export const CredentialPullResponse = Type.Object({
  gatewayKey: Type.Optional(Box),
  entries: Type.Array(CredentialEntry, { maxItems: MAX_CREDENTIALS }),
});

/** CLI -> node (`ferry credential set --node URL`), with the service's grant in a header. */
export const CredentialDirectSet = Type.Object(
  { linkedService: NameSchema, version: Type.Integer({ minimum: 1 }), box: Box },
  { additionalProperties: false },
);

export type NodeCredentialsT = Static<typeof NodeCredentials>;
export type CredentialEntryT = Static<typeof CredentialEntry>;
export type GatewayCredentialsT = Static<typeof GatewayCredentials>;
export type CredentialPushT = Static<typeof CredentialPush>;
export type CredentialPullT = Static<typeof CredentialPull>;
export type CredentialPullResponseT = Static<typeof CredentialPullResponse>;
export type CredentialDirectSetT = Static<typeof CredentialDirectSet>;

/** The header that carries a grant to a node's /admin/credentials. */
export const GRANT_HEADER = 'x-ferry-grant';
/** How long a grant may be used. */
export const GRANT_TTL_MS = 10 * 60_000;

/** What the service's signature on a grant vouches for. */
export interface CredentialGrant {
  kind: 'credential-grant';
  gatewayId: string;
  linkedService: string;
  version: number;
  /**
   * The one node that may take it (null: none; the values go through the service's relay): a grant
   * seen on the wire cannot be taken to another node with other values.
   */
  nodeId: string | null;
  expiresAt: number;
  /** Each grant is taken once. */
  nonce: string;
}

export function signGrant(
  key: KeyObject,
  g: Omit<CredentialGrant, 'kind' | 'nonce' | 'expiresAt'>,
  now: number,
): { grant: string; claims: CredentialGrant } {
  const claims: CredentialGrant = {
    kind: 'credential-grant',
    ...g,
    expiresAt: now + GRANT_TTL_MS,
    nonce: randomBytes(16).toString('hex'),
  };
  return { grant: signToken(key, claims), claims };
}

/** The grant's claims when it verifies under the service key, else undefined. */
export function verifyGrant(token: string, key: KeyObject): CredentialGrant | undefined {
  const c = verifyToken(token, key) as Partial<CredentialGrant> | undefined;
  if (
    c?.kind !== 'credential-grant' ||
    typeof c.gatewayId !== 'string' ||
    typeof c.linkedService !== 'string' ||
    typeof c.nonce !== 'string' ||
    !(typeof c.nodeId === 'string' || c.nodeId === null) ||
    !Number.isSafeInteger(c.version) ||
    !Number.isSafeInteger(c.expiresAt)
  )
    return undefined;
  return c as CredentialGrant;
}

/** The id a box of values set by an operator is bound to: only that gateway, linked service and version. */
export function setBoxId(gatewayId: string, linkedService: string, version: number): string {
  return `${gatewayId}/${linkedService}/v${version}`;
}

/** The id a node-to-node copy of an entry is bound to: only that recipient, linked service and version. */
export function copyBoxId(toNodeId: string, linkedService: string, version: number): string {
  return `${toNodeId}/${linkedService}/v${version}`;
}

/**
 * What a credential box holds: the secret values, and the endpoint they were set for (the linked
 * service's type and other properties, as the operator's CLI read them when sealing). A node uses the
 * values only for a task whose endpoint is that one: a service that points the linked service at
 * another host (or user, or database) does not get them sent there.
 */
export interface BoundCredential {
  values: Record<string, unknown>;
  endpoint: { type: string; properties: Record<string, unknown> };
}

/** Seals values bound to their endpoint, for (gateway, linked service, version) only. */
export function sealCredential(
  gatewayKey: string,
  to: { gatewayId: string; linkedService: string; version: number },
  bound: BoundCredential,
): string {
  return sealSecrets(
    gatewayKey,
    { values: bound.values, endpoint: bound.endpoint },
    setBoxId(to.gatewayId, to.linkedService, to.version),
    'credential',
  );
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** An opened box as a bound credential, or a refusal (a box without its endpoint is not used). */
export function asBoundCredential(opened: Record<string, unknown>): BoundCredential {
  const { values, endpoint } = opened;
  if (
    !isObject(values) ||
    !isObject(endpoint) ||
    typeof endpoint.type !== 'string' ||
    !isObject(endpoint.properties)
  )
    throw new FerryError('bad_request', 'the credential is not bound to an endpoint', {
      hint: 'set it with `ferry credential set`, which binds the values to the linked service they are for',
    });
  return { values, endpoint: { type: endpoint.type, properties: endpoint.properties } };
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isObject(v))
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical(v[k])]),
    );
  return v;
}

/**
 * The properties in which `endpoint` differs from the one the values were bound to (empty: the
 * same). Names only: a non-secret property's name says enough.
 */
export function endpointChanges(
  bound: BoundCredential['endpoint'],
  endpoint: BoundCredential['endpoint'],
): string[] {
  if (bound.type !== endpoint.type) return ['type'];
  const keys = new Set([...Object.keys(bound.properties), ...Object.keys(endpoint.properties)]);
  return [...keys]
    .filter(
      (k) =>
        JSON.stringify(canonical(bound.properties[k])) !== JSON.stringify(canonical(endpoint.properties[k])),
    )
    .sort();
}
