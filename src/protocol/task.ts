/**
 * What a task is on the wire: the service resolves an activity into TaskSpecs (linked services
 * included), the dispatcher forwards them to workers, workers send back a TaskResult.
 *
 * Every activity run starts with one `plan` task, run on a node (the service never touches data):
 * it lists the files or finds the column bounds and returns the partitions; the service then queues
 * one `copy` task per partition. Outputs are named by task index, so a retried attempt replaces.
 */
import { Type, type Static } from 'typebox';

/** A linked service's properties (or its secret ones): each store type checks its own (stores.ts). */
export const EndpointProperties = Type.Record(Type.String(), Type.Unknown());

export const ResolvedEndpoint = Type.Object({
  type: Type.String(),
  linkedService: Type.String(),
  /** The linked service's properties, without its secret ones. */
  properties: EndpointProperties,
  /**
   * The secret properties (password, key ...), sealed to the node that runs the attempt and bound to
   * the attempt id (protocol/sealed-secrets.ts); absent when the linked service has none.
   */
  sealedSecrets: Type.Optional(Type.String({ maxLength: 1_000_000 })),
  /**
   * The linked service keeps its secret values in the gateway (protocol/credentials.ts): the node
   * takes them from its own credential set, which must hold at least this version.
   */
  credentials: Type.Optional(Type.Object({ version: Type.Integer({ minimum: 1 }) })),
  /** The activity's source or sink options. */
  options: Type.Record(Type.String(), Type.Unknown()),
});

export const FilePartition = Type.Object({
  kind: Type.Literal('files'),
  /** Paths relative to the source folder. */
  files: Type.Array(Type.Object({ path: Type.String(), size: Type.Integer({ minimum: 0 }) })),
});

export const RangePartition = Type.Object({
  kind: Type.Literal('range'),
  column: Type.String(),
  /** Inclusive lower bound as text; null = unbounded. */
  lo: Type.Union([Type.String(), Type.Null()]),
  /** Exclusive upper bound as text; null = unbounded. */
  hi: Type.Union([Type.String(), Type.Null()]),
  /** The partition that also takes rows whose column is NULL. */
  includeNulls: Type.Boolean(),
});

export const WholePartition = Type.Object({ kind: Type.Literal('whole') });

export const Partition = Type.Union([FilePartition, RangePartition, WholePartition]);

/**
 * Incremental copy: the rows of a run are those whose watermark column is above `after` (the last
 * successful run's high mark; null = from the start) and at most `upTo` (the highest value when the
 * run was planned; null = the column held no values then).
 */
export const WatermarkWindow = Type.Object({
  column: Type.String(),
  after: Type.Union([Type.String(), Type.Null()]),
  upTo: Type.Union([Type.String(), Type.Null()]),
});

export const TaskWork = Type.Union([
  Type.Object({
    kind: Type.Literal('plan'),
    /** The high mark remembered for this activity (its watermark column), null = none yet. */
    watermark: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }),
  Type.Object({
    kind: Type.Literal('copy'),
    index: Type.Integer({ minimum: 0 }),
    partition: Partition,
    window: Type.Optional(WatermarkWindow),
  }),
  /** Runs once after every copy task succeeded, when the plan asked for it (a table overwrite's swap). */
  Type.Object({ kind: Type.Literal('finalize') }),
]);

export const TaskSpec = Type.Object({
  runId: Type.String(),
  activity: Type.String(),
  source: ResolvedEndpoint,
  sink: ResolvedEndpoint,
  maxBytesPerSecond: Type.Optional(Type.Integer({ minimum: 1 })),
  work: TaskWork,
});

export const TaskOutput = Type.Object({
  /** Object name in the sink (a relative path for files). */
  name: Type.String(),
  bytes: Type.Integer({ minimum: 0 }),
  rows: Type.Optional(Type.Integer({ minimum: 0 })),
  sha256: Type.String(),
});

export const PlanResult = Type.Object({
  kind: Type.Literal('plan'),
  partitions: Type.Array(Partition, { maxItems: 100000 }),
  /** The sink asked for a finalize task after the copies. */
  finalize: Type.Optional(Type.Boolean()),
  /** Incremental copy: what this run copies; `upTo` becomes the watermark when the activity succeeds. */
  window: Type.Optional(WatermarkWindow),
});

export const CopyResult = Type.Object({
  kind: Type.Literal('copy'),
  rowsRead: Type.Integer({ minimum: 0 }),
  rowsWritten: Type.Integer({ minimum: 0 }),
  bytesRead: Type.Integer({ minimum: 0 }),
  bytesWritten: Type.Integer({ minimum: 0 }),
  outputs: Type.Array(TaskOutput),
  /**
   * The rows were re-encoded on the way (a table to JSON lines, Parquet, gzip), so bytes read and
   * written differ by design and only rows are compared; a copy as-is must match in bytes too.
   */
  converted: Type.Optional(Type.Boolean()),
});

export const FinalizeResult = Type.Object({ kind: Type.Literal('finalize') });

export const TaskResult = Type.Union([PlanResult, CopyResult, FinalizeResult]);

export type WatermarkWindowT = Static<typeof WatermarkWindow>;
export type ResolvedEndpointT = Static<typeof ResolvedEndpoint>;
export type PartitionT = Static<typeof Partition>;
export type TaskWorkT = Static<typeof TaskWork>;
export type TaskSpecT = Static<typeof TaskSpec>;
export type TaskOutputT = Static<typeof TaskOutput>;
export type PlanResultT = Static<typeof PlanResult>;
export type CopyResultT = Static<typeof CopyResult>;
export type TaskResultT = Static<typeof TaskResult>;
