/**
 * The seam between the connector conformance suite (conformance-suite.ts) and one store. A store
 * passes the suite by providing a harness: its connectors, a way to start and stop a real instance
 * of the store, fresh isolated places in it, and endpoints that fail in each way a store can fail.
 *
 * The suite speaks in datasets, never in store calls, so files stores and table stores share it:
 * - a 'files' store holds named objects with exact bytes (a file, a blob, an S3 object);
 * - a 'table' store holds rows of typed columns. Rows travel as canonical CSV records
 *   (src/tables/table-columns.ts): the suite writes them, and a table harness returns what its
 *   sink table holds rendered the same way, so rows are compared as exact text. A table harness
 *   creates its source table from `columns` and loads the rows (COPY, LOAD DATA), and reads its sink
 *   table back over a connection of its own, never the writer's.
 *
 * Everything a harness reports about the sink is read from outside the writer (another client,
 * another connection, the file system), so "nothing visible before commit" means what a reader sees.
 *
 * What a store or its emulator cannot do is said, with the reason, in `limits` or in a broken case's
 * `skip`: the suite then reports that check as skipped with the reason, never as passed. What the
 * connector gets wrong today goes in `knownGaps`, by check name, and runs as TODO until fixed.
 */
import type { StoreType } from '../../protocol/stores.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { SinkConnector, SourceConnector } from '../connector.ts';
import type { TableColumn } from '../../tables/table-columns.ts';

/** One object of a files store: its name relative to the source folder or sink prefix, and its bytes. */
export interface StoredFile {
  name: string;
  data: Buffer;
}

export interface FileSet {
  kind: 'files';
  files: StoredFile[];
}

/** A table's content: its columns, and its rows as canonical CSV records (no header, no newline at the end). */
export interface RowSet {
  kind: 'table';
  columns: TableColumn[];
  rows: string[];
}

export type Dataset = FileSet | RowSet;

/** One isolated place in the store, for one check. Nothing another check does shows up in it. */
export interface ConformancePlace {
  /** Reads what `seed` stored (a folder or prefix of files, a table). */
  source: ResolvedEndpointT;
  /**
   * Writes where `visible` looks. A table sink endpoint must publish at commit, with no finalize
   * step (append or create mode): the suite prepares it with the dataset's columns before writing.
   */
  sink: ResolvedEndpointT;
  /**
   * Text the messages about the source name it by: the folder, prefix or table (a missing file's
   * message must also hold the file's own name).
   */
  sourceName: string;
  /** Secrets of this place's endpoints that no message may show, besides their secret properties. */
  secrets: string[];
  /** Stores the dataset at the source. A table harness creates the table from the columns first. */
  seed(data: Dataset): Promise<void>;
  /** Deletes what `seed` stored (the files, or the table itself), behind the back of a plan. */
  unseed(): Promise<void>;
  /** What a reader sees at the sink now; files sorted by name, rows sorted as text. */
  visible(): Promise<Dataset>;
  /**
   * What the store still keeps of attempts that a reader does not see: staging files, unfinished
   * uploads, staging tables. [] when clean. Unused when `limits.leftovers` says it cannot be seen.
   */
  leftovers(): Promise<string[]>;
  /**
   * What the store still holds of a connection test's write probe `probeName`, where the linked
   * service of `sink` puts it (a test ignores options): for a files store, anything under the
   * `.ferry-staging/` folder at the root of its folder, bucket or container (an empty folder left on
   * a file system counts); for a table store, tables named `probeName` in any schema. [] when clean.
   */
  probeLeftovers(probeName: string): Promise<string[]>;
}

/** The ways a store fails that every connector must report clearly. */
export type Failure = 'bad_configuration' | 'unreachable' | 'wrong_credentials' | 'missing_object';

/** What each failure must surface as: the catalogue code and the retry decision. */
export const EXPECTED_FAILURE: Record<
  Failure,
  { code: 'bad_request' | 'store_unreachable' | 'store_auth' | 'store_object_missing'; retryable: boolean }
> = {
  bad_configuration: { code: 'bad_request', retryable: false },
  // The only one worth retrying: a network or a server that comes back.
  unreachable: { code: 'store_unreachable', retryable: true },
  wrong_credentials: { code: 'store_auth', retryable: false },
  missing_object: { code: 'store_object_missing', retryable: false },
};

/** Endpoints that fail one way, built once the store runs, and what their messages must say. */
export interface BrokenEndpoints {
  /** Fails at plan. Absent when the store has no source connector. */
  source?: ResolvedEndpointT;
  /** Fails at prepare, open, stage or commit, whichever talks to the store first. */
  sink?: ResolvedEndpointT;
  /** Text every such message holds besides the store type and linked service: the object, field or address. */
  mentions: string[];
  /** Values no message may show (a wrong key, a password), besides the endpoints' secret properties. */
  secrets: string[];
}

export interface BrokenCase {
  failure: Failure;
  /** How the endpoint is broken, for the check's name: `unknown access key id`. */
  what: string;
  /** Set when the store or its emulator cannot fail this way: the check is reported skipped with it. */
  skip?: string;
  /** Required unless `skip` is set. Called after start(). */
  endpoints?: () => Promise<BrokenEndpoints>;
  /**
   * Set when the endpoints are broken by their options (a table that does not exist), not by the
   * linked service: a connection test, which ignores options, has nothing to find wrong.
   */
  inOptions?: boolean;
}

/** Checks a harness may be unable to make, with the reason. */
export interface HarnessLimits {
  /** Staging leftovers cannot be listed (an emulator without the API, or kept by design). */
  leftovers?: string;
  /** A read of an object's bytes cannot be made conditional on its version (If-Match ignored). */
  conditionalReads?: string;
}

export interface ConformanceHarness {
  /** The store type, as in endpoints; every message starts with it (`azure-blob "lake": ...`). */
  readonly type: StoreType;
  readonly kind: 'files' | 'table';
  /** Absent: the store is no source (yet), and the source checks are reported skipped. */
  readonly source?: SourceConnector;
  /** Absent: the store is no sink (yet), and the sink checks are reported skipped. */
  readonly sink?: SinkConnector;
  /** Source options that split a dataset of two or more objects or rows into two or more partitions. */
  readonly splitOptions: Record<string, unknown>;
  readonly limits: HarnessLimits;
  /**
   * Checks the store fails today, by the check's name, each with what is wrong and where the fix
   * goes. They still run, reported as TODO rather than failing the file, until the connector is
   * fixed; the entry goes with the fix. For a connector's own defect, never an emulator's limit.
   */
  readonly knownGaps?: Readonly<Record<string, string>>;
  /** One case per way of failing; a store that cannot fail some way says why in its `skip`. */
  readonly broken: readonly BrokenCase[];
  /** Starts the store (an emulator, a temp folder, a schema): once, before every check. */
  start(): Promise<void>;
  /** Stops it and removes all it created: once, after every check, failed ones included. */
  stop(): Promise<void>;
  /** The --allow-path roots contexts carry ([] for network stores). Called after start(). */
  allowedRoots(): readonly string[];
  /** A new empty place. Called after start(). */
  place(): Promise<ConformancePlace>;
  /**
   * Endpoints of the store's linked services with its address changed to 127.0.0.1:`port`, where a
   * server accepts connections and never answers: a signal must still cancel a connection test
   * there. Absent for a store without a network address (the file system). Called after start().
   */
  addressedTo?(port: number): { source: ResolvedEndpointT; sink: ResolvedEndpointT };
}
