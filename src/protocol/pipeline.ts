/**
 * The pipeline file (JSON or YAML), as applied with `ferry pipeline apply -f FILE`.
 * Source and sink options are checked against the store contract (stores.ts) of their linked service.
 */
import { Type, type Static } from 'typebox';
import { NameSchema } from './stores.ts';

export const RetryPolicy = Type.Object(
  {
    /** Attempts per task before it fails (default 5). */
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    /** First backoff after a failed or lost attempt (default 1000 ms), doubled each time ... */
    backoffMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
    /** ... up to this (default 30000 ms). */
    maxBackoffMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);

const Endpoint = Type.Object({ linkedService: NameSchema }, { additionalProperties: true });

export const CopyActivity = Type.Object(
  {
    name: NameSchema,
    type: Type.Optional(Type.Literal('copy')),
    source: Endpoint,
    sink: Endpoint,
    retry: Type.Optional(RetryPolicy),
    /** Limit each task's read rate (bytes per second); unset = as fast as the stores allow. */
    maxBytesPerSecond: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const PipelineSpec = Type.Object(
  {
    name: NameSchema,
    description: Type.Optional(Type.String()),
    activities: Type.Array(CopyActivity, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type PipelineSpecT = Static<typeof PipelineSpec>;
export type CopyActivityT = Static<typeof CopyActivity>;
export type RetryPolicyT = Static<typeof RetryPolicy>;
