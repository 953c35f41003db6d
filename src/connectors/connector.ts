/**
 * The connector contract. A source plans partitions and opens each as a stream of objects: a file
 * as-is, or a table partition as typed columns plus canonical CSV (src/tables/table-columns.ts). A sink takes
 * them in one of two ways (`accepts`):
 * - 'files' sinks (filesystem, Azure Blob, S3) stage bytes under a name. A table object reaches
 *   them already encoded in the sink's format (src/formats).
 * - 'table' sinks (PostgreSQL, MySQL) load rows. They take only table objects. A file source
 *   yields those when its `format` option says how to read its files.
 * A file copied as-is may also go the direct way: a source that can read a file into memory it is
 * given (SourceObject.direct: the filesystem) and a sink with buffers of its own to fill
 * (SinkWriter.stageDirect: Azure Blob's pooled blocks) skip the stream, and no buffer is made per
 * read. The executor picks it when both sides offer it; the rules below are the same.
 *
 * Rules every connector keeps (the conformance suite in src/connectors/conformance checks them
 * against the real stores):
 * - nothing is visible in the sink before commit(); abort() leaves nothing behind;
 * - a second committed attempt of the same task replaces the first one's output; it never adds to
 *   it. Files are named by task. Table sinks record each task's commit in a ledger, in the same
 *   transaction as its rows;
 * - the signal cancels reads and writes promptly;
 * - failures are FerryErrors that name the store, the object and the operation, with a retry decision.
 *
 * Lifecycle of one activity run: plan task (source.plan, source.describe, sink.prepare) -> copy
 * tasks (source.read, sink.open/stage/commit) -> finalize task (sink.finalize), when prepare asked
 * for one. Each step may run on any node and may run more than once, so each is idempotent.
 * Outside any run, a connection test (`ferry linked-service test`) calls checkRead and checkWrite
 * with a linked service alone, on the node the operator picks.
 */
import type { Readable } from 'node:stream';
import type { PartitionT, ResolvedEndpointT, TaskOutputT, WatermarkWindowT } from '../protocol/task.ts';
import type { DirectRead, FilePeek } from '../tables/object-reads.ts';
import type { TableColumn } from '../tables/table-columns.ts';
import type { UploadBudget } from '../common/upload-budget.ts';

/** Days a table sink keeps a ledger row after its commit; every prepare deletes older ones. */
export const LEDGER_RETENTION_DAYS = 30;

export interface ConnectorContext {
  signal: AbortSignal;
  /** Local roots this node may read and write (--allow-path). Empty = no local file access. */
  allowedRoots: readonly string[];
}

export interface PlanContext extends ConnectorContext {
  /**
   * The high mark the last successful run of this activity copied up to (exclusive lower bound for
   * this run); null on the first run. Only sources with a watermark column look at it.
   */
  watermark: string | null;
}

export interface ActivityContext extends ConnectorContext {
  runId: string;
  /** The activity's name within its pipeline. With runId, it names the activity run in ledgers. */
  activity: string;
}

export interface AttemptContext extends ActivityContext {
  taskId: string;
  attemptId: string;
  /** Position of the task in its activity; table outputs are named by it (part-00003.csv). */
  taskIndex: number;
  /** Incremental copy: read only rows in this window of the watermark column. */
  window?: WatermarkWindowT;
  /**
   * What object-store sinks' uploads may hold in the whole node (buffers, files kept open until
   * commit): one per node, shared by every attempt it runs.
   */
  uploadBudget: UploadBudget;
}

/** One object read from a source: a file, or a partition of a table. */
export interface SourceObject {
  /** Relative name the sink publishes it under; a table partition's has no extension (`part-00003`). */
  name: string;
  /** The bytes of a file, or a table partition as canonical CSV with a header row. */
  stream: Readable;
  /** Present exactly when the object is a table partition. */
  columns?: TableColumn[];
  /** Rows the source produced for this object, known once the stream has ended (undefined for raw files). */
  rows(): number | undefined;
  /**
   * A file's bytes read at any position into memory the caller owns, for sinks that fill buffers of
   * their own (block uploads): no buffer is made per read, and pieces can be read at once. Either
   * this or `stream` is used, never both; nothing is read until one of them asks, and destroying
   * `stream` releases the file either way.
   */
  direct?: DirectRead;
  /**
   * A file's bytes at a position, read apart from `stream` and not counted as the copy's: what the
   * plan task needs to look at without reading the whole file (a Parquet file's footer, for the
   * columns of a table it creates). Reads are of the object as it was opened, or fail; they work
   * until `stream` is closed.
   */
  peek?: FilePeek;
  /**
   * A path on this node through which another process (a Parquet converter) can open the file as it
   * was opened, even if it is renamed or replaced since: the node's open descriptor of it under
   * /proc. Valid until `stream` is destroyed, or while `direct.keep()` holds the file. Reads through
   * it are not counted as the copy's; the reader counts `direct.size` and checks
   * `direct.unchanged()` after its last read, as a sink reading `direct` does.
   */
  localPath?: string;
}

export interface SourcePlan {
  partitions: PartitionT[];
  /** Incremental sources: the rows this run copies, whose upper bound becomes the next watermark. */
  window?: WatermarkWindowT;
}

export interface SourceConnector {
  /** Splits the source into partitions, one copy task each. */
  plan(source: ResolvedEndpointT, ctx: PlanContext): Promise<SourcePlan>;
  /** Streams the objects of one partition. */
  read(source: ResolvedEndpointT, partition: PartitionT, ctx: AttemptContext): AsyncIterable<SourceObject>;
  /**
   * The columns a table source yields, so a sink can create its table before any task runs.
   * Absent, or undefined, for files read as-is.
   */
  describe?(source: ResolvedEndpointT, ctx: ConnectorContext): Promise<TableColumn[] | undefined>;
  /**
   * The connection test's read half (`ferry linked-service test`): connects with the linked
   * service's properties, ignoring `options` (`{}` in a test), and does the least that proves
   * reading works: lists the root folder, bucket or container, or connects and queries. Resolves with
   * one line for the operator saying what was verified (`listed bucket "b" (1 object seen)`). Throws
   * the FerryError a copy would meet (wrong credentials, unreachable, missing folder or bucket, a
   * root outside --allow-path), with a hint where the operator can act. Honours the signal and
   * closes what it opened, whether it succeeds or fails.
   */
  checkRead(endpoint: ResolvedEndpointT, ctx: ConnectorContext): Promise<string>;
}

export interface StagedObject {
  name: string;
  bytes: number;
  /**
   * Of the bytes published. A sink that reads an object only at commit (a small file held open,
   * HeldFile in object-store/held-file.ts) returns '' and fills it in once commit() has read it: the
   * executor takes it after the commit.
   */
  sha256: string;
  /** Rows the store accepted (table sinks), checked against the rows the source read. */
  rows?: number;
}

export interface StageInput {
  /** Object name (files sinks), or the partition name a table sink records in its ledger. */
  name: string;
  /**
   * The bytes. A chunk may sit in a pool buffer (src/common/chunk-pool.ts): the sink may give it
   * back with releaseChunk() once it is done with it (written, or copied), and keeps no reference to
   * it after that; a sink that never releases anything is correct too.
   */
  stream: Readable;
  /** Present for table sinks: the stream is canonical CSV with a header row naming these columns. */
  columns?: TableColumn[];
}

export interface SinkWriter {
  /** Writes one object to a staging place, invisible until commit. */
  stage(input: StageInput): Promise<StagedObject>;
  /**
   * stage() for a file copied as-is whose source offers direct reads (SourceObject.direct): the
   * sink reads it into its own buffers. Optional; the executor uses it when present.
   */
  stageDirect?(name: string, direct: DirectRead): Promise<StagedObject>;
  /** Publishes everything staged, replacing any earlier attempt's output for the same task. */
  commit(): Promise<void>;
  /** Discards everything staged. Safe to call after a failure and more than once. */
  abort(): Promise<void>;
}

export interface SinkPreparation {
  /** Ask for a finalize task once every copy task has succeeded (an overwrite's swap). */
  finalize: boolean;
}

export interface SinkConnector {
  readonly accepts: 'files' | 'table';
  /**
   * Runs in the plan task, before any copy task: creates a missing table, a staging table.
   * `columns` is the source's description, when it has one.
   */
  prepare?(
    sink: ResolvedEndpointT,
    columns: TableColumn[] | undefined,
    ctx: ActivityContext,
  ): Promise<SinkPreparation>;
  open(sink: ResolvedEndpointT, ctx: AttemptContext): Promise<SinkWriter>;
  /** Runs once every copy task has succeeded, when prepare asked for it. */
  finalize?(sink: ResolvedEndpointT, ctx: ActivityContext): Promise<void>;
  /**
   * The connection test's write half: proves the linked service may write, ignoring `options`, and
   * leaves nothing behind. A files sink writes a small object `.ferry-staging/<probeName>` (the
   * staging folder sources never list), reads back its size, and removes it; a table sink creates a
   * table `probeName`, inserts a row, and rolls back or drops it. `probeName` is lowercase letters,
   * digits and underscores (anything else is a bad_request), unique to the test. Resolves with one
   * line saying what was done, naming the probe. A write the store refuses (read-only rights, a
   * read-only server) fails with the connector's code for it and a message saying writing is
   * refused and why, with a hint about the rights needed. Honours the signal and closes what it
   * opened.
   */
  checkWrite(endpoint: ResolvedEndpointT, ctx: ConnectorContext, probeName: string): Promise<string>;
}

export type { TaskOutputT };
