/**
 * The connector contract. A source plans partitions and opens each as a stream of objects (a file, or
 * a table partition rendered in a format); a sink stages objects and publishes them atomically on
 * commit, named by task, so a retried attempt replaces what an earlier one wrote and never adds to it.
 *
 * Rules every connector keeps (each connector's tests check them against the real store):
 * - nothing is visible in the sink before commit(); abort() leaves nothing behind;
 * - commit() of a second attempt for the same task replaces the first attempt's output;
 * - the signal cancels reads and writes promptly;
 * - failures are FerryErrors that name the store, the object and the operation, with a retry decision.
 */
import type { Readable } from 'node:stream';
import type { PartitionT, ResolvedEndpointT, TaskOutputT } from '../protocol/task.ts';

export interface ConnectorContext {
  signal: AbortSignal;
  /** Local roots this node may read and write (--allow-path). Empty = no local file access. */
  allowedRoots: readonly string[];
}

export interface AttemptContext extends ConnectorContext {
  taskId: string;
  attemptId: string;
  /** Position of the task in its activity; table outputs are named by it (part-00003.csv). */
  taskIndex: number;
}

/** One object read from a source: a file, or a partition of a table already rendered in a format. */
export interface SourceObject {
  /** Relative name the sink publishes it under. */
  name: string;
  stream: Readable;
  /** Rows the source produced for this object, known once the stream has ended (undefined for raw files). */
  rows(): number | undefined;
}

export interface SourceConnector {
  /** Splits the source into partitions, one copy task each. */
  plan(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<PartitionT[]>;
  /** Streams the objects of one partition. */
  read(source: ResolvedEndpointT, partition: PartitionT, ctx: AttemptContext): AsyncIterable<SourceObject>;
}

export interface StagedObject {
  name: string;
  bytes: number;
  sha256: string;
}

export interface SinkWriter {
  /** Writes one object to a staging place, invisible until commit. */
  stage(name: string, stream: Readable): Promise<StagedObject>;
  /** Publishes everything staged, replacing any earlier attempt's output for the same names. */
  commit(): Promise<void>;
  /** Discards everything staged. Safe to call after a failure and more than once. */
  abort(): Promise<void>;
}

export interface SinkConnector {
  open(sink: ResolvedEndpointT, ctx: AttemptContext): Promise<SinkWriter>;
}

export type { TaskOutputT };
