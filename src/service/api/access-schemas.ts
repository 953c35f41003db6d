/** Request and response bodies of /api/v1/tokens and /api/v1/audit, named as in schemas.ts. */
import { Type, type TSchema } from 'typebox';
import { NameSchema } from '../../protocol/stores.ts';
import { ROLES, ROLE_MEANING } from '../roles.ts';
import { named } from './schemas.ts';

const DateTime = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const RoleSchema = Type.Union(
  ROLES.map((r) => Type.Literal(r)),
  {
    description: `A token's role. ${ROLES.map((r) => `${r}: ${ROLE_MEANING[r]}`).join('; ')}.`,
  },
);

const ApiTokenProperties = {
  id: Type.String(),
  name: NameSchema,
  role: RoleSchema,
  createdAt: DateTime,
  createdBy: Type.String({ description: 'The token that made it ("bootstrap": FERRY_ADMIN_TOKEN).' }),
  lastUsedAt: Nullable(DateTime),
  revokedAt: Nullable(DateTime),
  revokedBy: Nullable(Type.String()),
};

export const ApiToken = named(
  'ApiToken',
  Type.Object(ApiTokenProperties),
  'An API token, without the token itself (kept only as its hash).',
);

export const ApiTokenList = named('ApiTokenList', Type.Object({ tokens: Type.Array(ApiToken) }));

export const ApiTokenCreate = named(
  'ApiTokenCreate',
  Type.Object({ name: NameSchema, role: RoleSchema }, { additionalProperties: false }),
);

export const ApiTokenCreated = named(
  'ApiTokenCreated',
  Type.Object({
    ...ApiTokenProperties,
    token: Type.String({ description: 'The token: shown this once, kept nowhere.' }),
  }),
  'The new token, with the token itself.',
);

const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);

export const AuditEntry = named(
  'AuditEntry',
  Type.Object({
    id: Type.Integer(),
    at: DateTime,
    actor: Type.String({ description: 'The token\'s name, or "bootstrap".' }),
    role: RoleSchema,
    method: Type.String(),
    route: Type.String({ description: 'The route as this document names it: /api/v1/gateways/{name}.' }),
    params: Type.Record(Type.String(), Scalar, { description: "The route's path parameters." }),
    details: Type.Record(Type.String(), Scalar, {
      description: 'The few fields of the request (never a secret) and of the answer kept for this route.',
    }),
    status: Type.Integer({ description: 'The HTTP status answered.' }),
  }),
  'One changing request: who, what, and how it ended.',
);

export const AuditEntries = named('AuditEntries', Type.Object({ entries: Type.Array(AuditEntry) }));
