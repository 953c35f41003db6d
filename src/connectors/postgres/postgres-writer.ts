/**
 * The PostgreSQL sink: one PostgresWriter per task attempt, one connection and one transaction.
 *
 * Attempt states: open -> committed | aborted (both final; abort after commit is a no-op, commit
 * after abort is refused). open() begins the transaction and claims the task in the ledger
 * (postgres-ledger.ts) by inserting its row:
 * - claimed: stage() runs `COPY target (columns) FROM STDIN (FORMAT csv, HEADER true)` with the
 *   canonical CSV, hashing and counting the bytes it feeds, and keeps the ledger row's figures up to
 *   date. commit() commits rows and ledger row together. Until then nothing is visible, and abort()
 *   (or a dead node, or a severed connection) rolls both back.
 * - already recorded: an earlier attempt committed the task. This one rolls back, and stage()
 *   drains each stream (the source counts what it read), loads nothing and reports that commit's
 *   figures; commit() has nothing to publish.
 * A concurrent attempt of the same task that holds the claim makes open() wait for its transaction:
 * recorded if it commits, ours if it rolls back. Claiming before loading, rather than recording after,
 * keeps the waiting attempt from loading rows at all, which in a target with a primary key would
 * collide with the other attempt's rows and fail as a duplicate key instead of succeeding.
 *
 * The COPY names its columns (the sink's `columns`, else the source's names), so a target with
 * extra columns fills them with their defaults. In overwrite mode the rows go to the activity run's
 * staging table instead (postgres-preparer.ts); the finalize task moves them.
 *
 * A task with several objects (files read as a table) records one ledger row with the sums, and
 * as its checksum the sha256 of the objects' checksums, one per line.
 */
import { createHash } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { FerryError } from '../../common/errors.ts';
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { AttemptContext, SinkWriter, StageInput, StagedObject } from '../connector.ts';
import { connectPostgres, type PostgresSession } from './postgres-client.ts';
import {
  compilePostgresSink,
  compilePostgresTarget,
  quoteIdentifier,
  type CompiledPostgresSink,
  type PostgresTarget,
} from './postgres-config.ts';
import { cancelledError, postgresError, postgresMessage, withStoreName } from './postgres-errors.ts';
import {
  findLedgerEntry,
  insertLedgerEntry,
  ledgerKey,
  updateLedgerEntry,
  type LedgerEntry,
  type LedgerKey,
} from './postgres-ledger.ts';
import { resolveSinkTables, type SinkTables } from './postgres-sink-tables.ts';

type WriterState = 'open' | 'committed' | 'aborted';

/** Bytes gathered into one COPY message. */
const COPY_CHUNK_BYTES = 64 * 1024;
const EMPTY_SHA256 = createHash('sha256').digest('hex');

export async function openPostgresWriter(sink: ResolvedEndpointT, ctx: AttemptContext): Promise<SinkWriter> {
  const target = compilePostgresTarget(sink);
  const options = compilePostgresSink(sink);
  const session = await connectPostgres(target, ctx.signal);
  try {
    const tables = await resolveSinkTables(session, options, ctx, target.linkedService, 'open');
    await session.query('BEGIN', [], 'open');
    const key = ledgerKey(ctx, ctx.taskIndex);
    const nothing: LedgerEntry = { rows: 0, bytes: 0, sha256: EMPTY_SHA256 };
    let earlier: LedgerEntry | undefined;
    if (!(await insertLedgerEntry(session, tables.ledger, key, nothing, 'open'))) {
      await session.query('ROLLBACK', [], 'open');
      earlier = await findLedgerEntry(session, tables.ledger, key, 'open');
      // Recorded a moment ago and gone now: someone is cleaning the ledger; a new attempt will see.
      if (earlier === undefined) {
        throw new FerryError(
          'store_error',
          postgresMessage(target.linkedService, `the ledger row of task ${key.taskIndex} vanished (open)`),
          { retryable: true },
        );
      }
    }
    return new PostgresWriter(session, target, options, tables, key, earlier, ctx.signal);
  } catch (err) {
    await session.close();
    throw err;
  }
}

export class PostgresWriter implements SinkWriter {
  readonly #session: PostgresSession;
  readonly #target: PostgresTarget;
  readonly #options: CompiledPostgresSink;
  readonly #tables: SinkTables;
  readonly #key: LedgerKey;
  readonly #signal: AbortSignal;
  /** The commit that counts when another attempt made it; this attempt then loads nothing. */
  readonly #earlier: LedgerEntry | undefined;
  /** Whether the figures of #earlier were reported yet (by the first stage). */
  #earlierReported = false;
  readonly #staged: StagedObject[] = [];
  #state: WriterState = 'open';

  constructor(
    session: PostgresSession,
    target: PostgresTarget,
    options: CompiledPostgresSink,
    tables: SinkTables,
    key: LedgerKey,
    earlier: LedgerEntry | undefined,
    signal: AbortSignal,
  ) {
    this.#session = session;
    this.#target = target;
    this.#options = options;
    this.#tables = tables;
    this.#key = key;
    this.#earlier = earlier;
    this.#signal = signal;
  }

  async stage({ name, stream, columns }: StageInput): Promise<StagedObject> {
    // A source failure before pipeline() listens is kept by the stream for pipeline() to report.
    stream.on('error', () => {});
    let columnsSql: string;
    try {
      this.#assertOpen('stage');
      if (this.#signal.aborted) throw cancelledError(this.#target.linkedService, 'stage');
      columnsSql = withStoreName(this.#target.linkedService, () =>
        this.#columnNames(columns).map(quoteIdentifier).join(', '),
      );
    } catch (err) {
      stream.destroy(); // ours once handed over: refusing it must not leave its source open
      throw err;
    }
    if (this.#earlier !== undefined) return this.#skip(name, stream);

    const into = this.#options.mode === 'overwrite' ? this.#tables.staging : this.#tables.target;
    const operation = `copy ${name} into ${this.#tables.shown}`;
    const hash = createHash('sha256');
    let bytes = 0;
    // Small chunks are gathered up to COPY_CHUNK_BYTES: COPY FROM sends every chunk as its own message
    // with two socket writes, so a source that hands over a row at a time would cost a syscall per row.
    let parts: Buffer[] = [];
    let held = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        if (held === 0 && chunk.length >= COPY_CHUNK_BYTES) return callback(null, chunk);
        parts.push(chunk);
        held += chunk.length;
        if (held >= COPY_CHUNK_BYTES) {
          this.push(Buffer.concat(parts, held));
          parts = [];
          held = 0;
        }
        callback();
      },
      flush(callback) {
        if (held > 0) this.push(Buffer.concat(parts, held));
        callback();
      },
    });
    const copy = this.#session.client.query(
      copyFrom(`COPY ${into} (${columnsSql}) FROM STDIN WITH (FORMAT csv, HEADER true)`),
    );
    try {
      await pipeline(stream, meter, copy);
    } catch (err) {
      throw this.#failure(err, operation);
    }
    const staged: StagedObject = { name, bytes, sha256: hash.digest('hex'), rows: copy.rowCount };
    this.#staged.push(staged);
    await updateLedgerEntry(this.#session, this.#tables.ledger, this.#key, this.#total(), 'record task');
    return staged;
  }

  async commit(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#assertOpen('commit');
    if (this.#signal.aborted) throw cancelledError(this.#target.linkedService, 'commit');
    // With an earlier commit, there is no transaction: open() rolled it back.
    if (this.#earlier === undefined) await this.#session.query('COMMIT', [], 'commit');
    this.#state = 'committed';
    await this.#session.close();
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    // Closing the connection rolls back too; ROLLBACK first only ends it tidily on the server.
    if (!this.#signal.aborted) await this.#session.query('ROLLBACK', [], 'abort').catch(() => {});
    await this.#session.close();
  }

  /** The target columns the COPY names; messages get the store's name from the caller. */
  #columnNames(columns: StageInput['columns']): string[] {
    if (columns === undefined) {
      throw new FerryError('bad_request', 'a table sink takes tables; this object has no columns (stage)');
    }
    const names = this.#options.columns;
    if (names === undefined) return columns.map((c) => c.name);
    if (names.length !== columns.length) {
      throw new FerryError(
        'bad_request',
        `columns lists ${names.length} columns for a source of ${columns.length} (${columns.map((c) => c.name).join(', ')}) (stage)`,
      );
    }
    return names;
  }

  /** Task already committed: read the stream to its end (the source counts it) and load nothing. */
  async #skip(name: string, stream: Readable): Promise<StagedObject> {
    try {
      await pipeline(stream, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
    } catch (err) {
      throw this.#failure(err, `stage ${name}`);
    }
    if (this.#earlierReported) return { name, bytes: 0, sha256: EMPTY_SHA256, rows: 0 };
    this.#earlierReported = true;
    return { name, ...this.#earlier! };
  }

  #total(): LedgerEntry {
    const [only] = this.#staged;
    const sha256 =
      this.#staged.length === 1 && only !== undefined
        ? only.sha256
        : createHash('sha256')
            .update(this.#staged.map((s) => `${s.sha256}\n`).join(''))
            .digest('hex');
    return {
      rows: this.#staged.reduce((n, s) => n + (s.rows ?? 0), 0),
      bytes: this.#staged.reduce((n, s) => n + s.bytes, 0),
      sha256,
    };
  }

  #failure(err: unknown, operation: string): FerryError {
    if (err instanceof FerryError) return err;
    if (this.#signal.aborted) return cancelledError(this.#target.linkedService, operation);
    return postgresError(err, this.#target, operation);
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new FerryError(
        'conflict',
        postgresMessage(this.#target.linkedService, `the attempt is ${this.#state} (${operation})`),
      );
    }
  }
}
