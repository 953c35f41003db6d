/**
 * Kysely's SqliteDialect speaks better-sqlite3's interface; node:sqlite's DatabaseSync is close but not
 * the same. This adapter bridges the two: `reader` from the statement's result columns, and rows copied
 * out of their null prototype so they behave like ordinary objects. Prepared statements are kept per
 * SQL text: Kysely asks for a fresh one on every query, and preparing was the service's top cost.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { SqliteDialect } from 'kysely';

type Param = null | number | bigint | string | NodeJS.ArrayBufferView;

function toParams(parameters: ReadonlyArray<unknown>): Param[] {
  return parameters.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : (p as Param)));
}

class Statement {
  readonly #stmt: StatementSync;
  readonly reader: boolean;

  constructor(stmt: StatementSync) {
    this.#stmt = stmt;
    this.reader = stmt.columns().length > 0;
  }

  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#stmt.all(...toParams(parameters)).map((row) => ({ ...row }));
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.#stmt.run(...toParams(parameters));
  }

  *iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    for (const row of this.#stmt.iterate(...toParams(parameters))) yield { ...row };
  }
}

/** Distinct SQL texts kept prepared; the service issues a few hundred shapes at most. */
const STATEMENT_CACHE_SIZE = 1000;

export function createSqliteDialect(path: string): SqliteDialect {
  const database = new DatabaseSync(path);
  // WAL lets the CLI and operators read the file while the service writes; the busy timeout covers both.
  database.exec(
    'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;',
  );
  const cache = new Map<string, Statement>();
  const prepare = (sql: string): Statement => {
    let stmt = cache.get(sql);
    if (stmt) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      cache.delete(sql);
    } else {
      stmt = new Statement(database.prepare(sql));
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value ?? '');
    }
    cache.set(sql, stmt);
    return stmt;
  };
  return new SqliteDialect({
    database: {
      close: () => database.close(),
      prepare,
    },
  });
}
