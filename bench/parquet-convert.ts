/**
 * The second step of the pg-to-parquet peer: `node bench/parquet-convert.ts IN.csv OUT.parquet
 * [THREADS] [PRESERVE_ORDER]` converts a psql CSV export of the bench table to Parquet with DuckDB,
 * the library Ferry's own Parquet encoder runs (src/formats). The column types are the ones Ferry
 * writes for the table (docs/type-mapping.md), so both produce the same schema; compression and row
 * groups are DuckDB's defaults unless the tuning says otherwise.
 *
 * Also `digestParquet(files)`: the check both sides' outputs go through (schema, rows, id sum and an
 * order-independent hash of every row), read with DuckDB.
 */
import { DuckDBInstance } from '@duckdb/node-api';

const COLUMNS = `{'id': 'BIGINT', 'qty': 'INTEGER', 'amount': 'DECIMAL(12,2)', 'note': 'VARCHAR',
  'placed': 'TIMESTAMPTZ', 'due': 'DATE'}`;

/** A value DuckDB returned as VARCHAR, as text. */
function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export async function convert(
  input: string,
  output: string,
  threads: number,
  preserveOrder: boolean,
): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(threads),
    preserve_insertion_order: String(preserveOrder),
  });
  const c = await instance.connect();
  try {
    await c.run("SET TimeZone = 'UTC'");
    await c.run(`COPY (SELECT * FROM read_csv(${sqlString(input)}, header = true, auto_detect = false,
        delim = ',', quote = '"', escape = '"', columns = ${COLUMNS}))
      TO ${sqlString(output)} (FORMAT parquet)`);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

export interface ParquetDigest {
  schema: string;
  rows: number;
  idSum: string;
  hash: string;
}

export async function digestParquet(files: readonly string[]): Promise<ParquetDigest> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await instance.connect();
  try {
    await c.run("SET TimeZone = 'UTC'");
    const list = `[${files.map(sqlString).join(', ')}]`;
    const schema = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${list})`))
      .getRowObjectsJS()
      .map((r) => `${text(r['column_name'])} ${text(r['column_type'])}`)
      .join(', ');
    const [row] = (
      await c.runAndReadAll(`SELECT count(*)::VARCHAR AS n, sum(id)::VARCHAR AS ids,
          sum(hash(id, qty, amount, note, placed, due))::VARCHAR AS h FROM read_parquet(${list})`)
    ).getRowObjectsJS();
    return { schema, rows: Number(text(row?.['n'])), idSum: text(row?.['ids']), hash: text(row?.['h']) };
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

if (import.meta.main) {
  const [input, output, threads = '2', preserve = 'true'] = process.argv.slice(2);
  if (!input || !output) {
    process.stderr.write(
      'usage: node bench/parquet-convert.ts IN.csv OUT.parquet [THREADS] [PRESERVE_ORDER]\n',
    );
    process.exit(2);
  }
  await convert(input, output, Number(threads), preserve === 'true');
}
