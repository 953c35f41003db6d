/**
 * The MySQL sink's writer: one per task attempt, one connection, one transaction. Every table
 * object of the task is loaded into the table (an overwrite's staging table) inside that
 * transaction, together with the task's ledger row (mysql-ledger.ts), and COMMIT publishes both.
 *
 * States: open -> writing -> committed; open -> done-elsewhere -> committed; any -> failed | aborted.
 * - open: connected, nothing begun. The first stage() begins the transaction and reads the ledger.
 * - done-elsewhere: another attempt of this task committed (its ledger row was there at the start,
 *   or appeared while this one loaded). stage() drains the stream and reports the ledger's figures;
 *   commit() commits nothing. This is how a retry after a commit adds nothing.
 * - writing: the transaction is this attempt's; rows and ledger row written are invisible to
 *   everyone else until commit().
 * - failed: a stage failed; only abort() is left. abort() rolls back, at any point, any number of times.
 *
 * The load itself takes the fast path, LOAD DATA LOCAL (mysql-load-data.ts), unless the server has
 * local_infile off or refuses it; then multi-row INSERTs (mysql-insert-batches.ts). Either way, any
 * warning fails the task (mysql-warnings.ts), and the rows the server took must be the rows fed.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CsvError } from 'csv-parse';
import type { ResultSetHeader } from 'mysql2';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SinkWriter, StageInput, StagedObject } from '../connector.ts';
import { canonicalInput, type CanonicalInput, type CanonicalRecord } from './mysql-canonical-input.ts';
import { WRITING_SESSION, connectMysql, type MysqlSession } from './mysql-client.ts';
import { readColumns, type ColumnInfo } from './mysql-columns.ts';
import {
  compileMysqlSink,
  compileMysqlTarget,
  stagingTable,
  type CompiledMysqlSink,
  type MysqlTarget,
  type QualifiedTable,
} from './mysql-config.ts';
import { cancelledError, mysqlError, mysqlMessage } from './mysql-errors.ts';
import { insertBatches } from './mysql-insert-batches.ts';
import {
  findLedgerEntry,
  insertLedgerEntry,
  updateLedgerEntry,
  type LedgerEntry,
  type LedgerKey,
} from './mysql-ledger.ts';
import { RecordError, loadData, loadDataRefused, type LoadTarget } from './mysql-load-data.ts';
import { guardFor, textAsBinary } from './mysql-values.ts';
import { assertNoWarnings } from './mysql-warnings.ts';

/** A ROLLBACK that takes longer is cut short: the server rolls back a dropped connection itself. */
const ROLLBACK_TIMEOUT_MS = 10_000;
const EMPTY_SHA256 = createHash('sha256').digest('hex');

type WriterState = 'open' | 'writing' | 'done-elsewhere' | 'failed' | 'committed' | 'aborted';

export interface WriterTuning {
  /**
   * false: connect without the LOAD DATA LOCAL capability, so the server refuses it as one with
   * local_infile off does, and loads fall back to INSERT batches. For tests of that path.
   */
  localInfile?: boolean;
}

export async function openMysqlWriter(
  sink: ResolvedEndpointT,
  ctx: AttemptContext,
  tuning: WriterTuning = {},
): Promise<SinkWriter> {
  const target = compileMysqlTarget(sink);
  const options = compileMysqlSink(sink, target.database);
  const table = options.mode === 'overwrite' ? stagingTable(options, ctx.runId, ctx.activity) : options;
  const session = await connectMysql(target, ctx.signal, {
    ...WRITING_SESSION,
    localInfile: tuning.localInfile !== false,
  });
  try {
    const [server] = await session.run<{ local_infile: number | string; max_packet: number | string }[]>(
      'SELECT @@GLOBAL.local_infile AS local_infile, @@max_allowed_packet AS max_packet',
      'open',
    );
    return new MysqlWriter(session, target, options, table, ctx, {
      loadData: Number(server?.local_infile) === 1,
      maxPacket: Number(server?.max_packet ?? 0) || 4 * 1024 * 1024,
    });
  } catch (err) {
    await session.close();
    throw err;
  }
}

interface ServerTraits {
  loadData: boolean;
  maxPacket: number;
}

export class MysqlWriter implements SinkWriter {
  readonly #session: MysqlSession;
  readonly #target: MysqlTarget;
  readonly #options: CompiledMysqlSink;
  readonly #table: QualifiedTable;
  readonly #signal: AbortSignal;
  readonly #key: LedgerKey;
  readonly #traits: ServerTraits;
  #state: WriterState = 'open';
  /** What this attempt loaded so far: what its ledger row says. */
  readonly #loaded: { rows: number; bytes: number; sha256s: string[] } = { rows: 0, bytes: 0, sha256s: [] };
  /** The loaded table's columns, read at the first load. */
  #targetColumns: ColumnInfo[] | undefined;
  /** The committed attempt's figures, once known, and whether a stage reported them yet. */
  #elsewhere: { entry: LedgerEntry; reported: boolean } | undefined;

  constructor(
    session: MysqlSession,
    target: MysqlTarget,
    options: CompiledMysqlSink,
    table: QualifiedTable,
    ctx: AttemptContext,
    traits: ServerTraits,
  ) {
    this.#session = session;
    this.#target = target;
    this.#options = options;
    this.#table = table;
    this.#signal = ctx.signal;
    this.#key = { runId: ctx.runId, activity: ctx.activity, taskIndex: ctx.taskIndex };
    this.#traits = traits;
  }

  /** Whether loads still take the LOAD DATA path (false once a server refused it). */
  get usesLoadData(): boolean {
    return this.#traits.loadData;
  }

  async stage(input: StageInput): Promise<StagedObject> {
    const operation = `stage ${input.name} into ${this.#table.table}`;
    // A source failure before the load listens is kept by the stream for the load to report; unheard,
    // it would be an uncaught exception and end the node.
    input.stream.on('error', () => {});
    if (this.#state === 'failed' || this.#state === 'committed' || this.#state === 'aborted') {
      input.stream.destroy();
      throw new FerryError(
        'conflict',
        this.#message(`stage after the attempt ${this.#state} (${operation})`),
      );
    }
    try {
      const columns = input.columns;
      if (!columns) throw new FerryError('bad_request', 'a table sink takes table objects only');
      const names = this.#options.columns ?? columns.map((c) => c.name);
      if (names.length !== columns.length) {
        throw new FerryError(
          'bad_request',
          `the sink lists ${names.length} columns (${names.join(', ')}) for ${columns.length} source columns (${columns.map((c) => c.name).join(', ')})`,
        );
      }
      if (this.#state === 'open') await this.#begin(operation);
      if (this.#elsewhere) return await this.#drain(input.name, input.stream);
      this.#targetColumns ??= await readColumns(this.#session, this.#table, operation);
      const byName = new Map(this.#targetColumns.map((c) => [c.name.toLowerCase(), c]));
      // Text into a binary column (binary read from CSV or JSON lines is `\x` hex text) is taken as
      // PostgreSQL's bytea takes it, so both table sinks store the same bytes.
      const textToBinary = columns.map(
        (c, i) => c.type !== 'binary' && byName.get(names[i]!.toLowerCase())?.column.type === 'binary',
      );
      const target: LoadTarget = {
        table: this.#table,
        names,
        types: columns.map((c, i) => (textToBinary[i] ? 'binary' : c.type)),
        guards: names.map((n) => {
          const info = byName.get(n.toLowerCase());
          return info && guardFor(info);
        }),
      };
      const records = canonicalInput(input.stream, columns);
      if (textToBinary.includes(true)) records.records = binaryFromText(records.records, textToBinary);
      return await this.#load(input.name, records, target, operation);
    } catch (err) {
      this.#state = 'failed';
      input.stream.destroy();
      throw this.#error(err, operation);
    }
  }

  async commit(): Promise<void> {
    switch (this.#state) {
      case 'committed':
        return;
      case 'failed':
      case 'aborted':
        throw new FerryError('conflict', this.#message(`commit after the attempt ${this.#state}`));
      case 'writing':
        try {
          await this.#session.run('COMMIT', 'commit');
        } catch (err) {
          // A connection lost during COMMIT leaves the outcome unknown; the retry reads the ledger.
          this.#state = 'failed';
          throw this.#error(err, 'commit');
        }
        break;
      case 'open':
      case 'done-elsewhere':
        // Nothing of this attempt's is to be published.
        await this.#rollback();
        break;
    }
    this.#state = 'committed';
    await this.#session.close();
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    await this.#rollback();
    await this.#session.close();
  }

  async #begin(operation: string): Promise<void> {
    await this.#session.run('START TRANSACTION', operation);
    // The transaction's snapshot starts here: an attempt that committed before sees its ledger row.
    const entry = await findLedgerEntry(this.#session, this.#options.ledger, this.#key, operation);
    if (entry) this.#doneElsewhere(entry, false);
    else this.#state = 'writing';
  }

  async #load(
    name: string,
    input: CanonicalInput,
    target: LoadTarget,
    operation: string,
  ): Promise<StagedObject> {
    const affected = await this.#write(input, target, operation).catch(async (err: unknown) => {
      // A whole load the server refused (a duplicate key) may have met the rows of an attempt that
      // committed meanwhile: then the task is done, and this attempt only reports it.
      const taken =
        input.done() && !this.#signal.aborted && (await this.#takenMeanwhile(operation).catch(() => false));
      if (taken) return undefined;
      throw err;
    });
    if (affected === undefined) return this.#drain(name, undefined);
    const rows = input.rows();
    if (affected !== rows) {
      if (await this.#takenMeanwhile(operation)) return this.#drain(name, undefined);
      throw new FerryError(
        'verification_failed',
        this.#message(`the server took ${affected} of ${rows} rows (${operation})`),
        { retryable: false },
      );
    }
    const staged: StagedObject = { name, bytes: input.bytes(), sha256: input.sha256(), rows };
    const loaded = this.#loaded;
    loaded.rows += rows;
    loaded.bytes += staged.bytes;
    loaded.sha256s.push(staged.sha256);
    const entry: LedgerEntry = {
      rows: loaded.rows,
      bytes: loaded.bytes,
      // One object (a table partition): its own checksum. Several (files read as tables): theirs, hashed.
      sha256:
        loaded.sha256s.length === 1
          ? staged.sha256
          : createHash('sha256').update(loaded.sha256s.join('\n')).digest('hex'),
    };
    const ledger = this.#options.ledger;
    if (loaded.sha256s.length > 1) {
      await updateLedgerEntry(this.#session, ledger, this.#key, entry, operation);
      return staged;
    }
    // Waits while another attempt holds the same key uncommitted; 'taken' once it has committed.
    if ((await insertLedgerEntry(this.#session, ledger, this.#key, entry, operation)) === 'taken') {
      if (await this.#takenMeanwhile(operation)) return this.#drain(name, undefined);
      throw new FerryError('internal', this.#message(`the ledger row of this task vanished (${operation})`));
    }
    return staged;
  }

  /** Loads the records; returns the rows the server took. */
  async #write(input: CanonicalInput, target: LoadTarget, operation: string): Promise<number> {
    const ls = this.#target.linkedService;
    if (this.#traits.loadData) {
      let result: ResultSetHeader | undefined;
      try {
        result = await loadData(this.#session, target, input.records, operation);
      } catch (err) {
        if (!loadDataRefused(err)) throw err;
        // Refused before the first byte was asked for: the records are untouched.
        this.#traits.loadData = false;
      }
      if (result) {
        await assertNoWarnings(this.#session, result, ls, operation);
        return result.affectedRows;
      }
    }
    return insertBatches(this.#session, target, input.records, this.#traits.maxPacket, ls, operation);
  }

  /** Rolls this attempt back and reads the ledger: true when another attempt committed the task. */
  async #takenMeanwhile(operation: string): Promise<boolean> {
    if (this.#session.dead) return false;
    await this.#session.run('ROLLBACK', operation);
    const entry = await findLedgerEntry(this.#session, this.#options.ledger, this.#key, operation);
    if (entry) this.#doneElsewhere(entry, false);
    return entry !== undefined;
  }

  #doneElsewhere(entry: LedgerEntry, reported: boolean): void {
    this.#elsewhere = { entry, reported };
    this.#state = 'done-elsewhere';
  }

  /**
   * Reports the committed attempt's figures for the task, once (on its first object); the stream is
   * read to its end (undefined: already read), so the source's figures are whole too.
   */
  async #drain(name: string, stream: Readable | undefined): Promise<StagedObject> {
    if (stream) for await (const _chunk of stream) void _chunk;
    const elsewhere = this.#elsewhere;
    if (!elsewhere) throw new FerryError('internal', this.#message('no ledger figures to report'));
    if (elsewhere.reported) return { name, bytes: 0, sha256: EMPTY_SHA256, rows: 0 };
    elsewhere.reported = true;
    const { entry } = elsewhere;
    return { name, bytes: entry.bytes, sha256: entry.sha256 ?? EMPTY_SHA256, rows: entry.rows };
  }

  async #rollback(): Promise<void> {
    if (this.#session.dead) return;
    try {
      await this.#session.run({ sql: 'ROLLBACK', timeout: ROLLBACK_TIMEOUT_MS }, 'rollback');
    } catch {
      // Dropping the connection rolls the transaction back on the server all the same.
      this.#session.kill();
    }
  }

  #message(text: string): string {
    return mysqlMessage(this.#target.linkedService, text);
  }

  /** Any failure as a FerryError naming the store, the object and the operation. */
  #error(err: unknown, operation: string): FerryError {
    if (this.#signal.aborted) return cancelledError(this.#target.linkedService, operation);
    if (err instanceof RecordError) {
      return new FerryError(
        'bad_request',
        this.#message(`row ${err.row}, column ${err.column}: ${err.message} (${operation})`),
        { cause: err, retryable: false },
      );
    }
    if (err instanceof CsvError) {
      return new FerryError(
        'bad_request',
        this.#message(`the rows are not canonical CSV: ${err.message} (${operation})`),
        {
          cause: err,
          retryable: false,
        },
      );
    }
    // Another store's error (the source's), or one of this connector's, already says where it is from.
    if (err instanceof FerryError && /^[a-z][a-z0-9-]* "/.test(err.message)) return err;
    if (err instanceof FerryError) {
      return new FerryError(err.code, this.#message(`${err.message} (${operation})`), {
        cause: err,
        retryable: err.retryable,
      });
    }
    return mysqlError(err, this.#target, operation);
  }
}

async function* binaryFromText(
  records: AsyncIterable<CanonicalRecord>,
  columns: readonly boolean[],
): AsyncGenerator<CanonicalRecord> {
  for await (const record of records) {
    for (let i = 0; i < record.length; i++) {
      const value = record[i];
      if (columns[i] && value !== null && value !== undefined) record[i] = textAsBinary(value);
    }
    yield record;
  }
}
