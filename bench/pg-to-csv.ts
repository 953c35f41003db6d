/**
 * pg-to-csv: a 5 M-row PostgreSQL table to CSV files on disk (BENCHMARKS.md).
 *
 * Ferry reads the table in id ranges (partitionColumn, BENCH_PARTITIONS, default 4), on a gateway of
 * one node and on one of two nodes; the peer is one `psql \copy (SELECT ...) to FILE csv header`.
 * Rounds go Ferry 1 node, psql, Ferry 2 nodes. Every output is checked against the table (row count,
 * sum of ids) and against the first one (an order-independent hash of every line, csv-digest.ts),
 * so Ferry's part files and psql's single file must hold exactly the same lines.
 *
 * Env: BENCH_ROWS (default 5,000,000), BENCH_PARTITIONS, BENCH_RUNS, BENCH_WARMUPS.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alternate, maxRss, mib, speedRatio, type Contender, type Sample } from './alternate.ts';
import { CsvChecker, digestCsvFiles } from './csv-digest.ts';
import { startFerry, type FerryCluster } from './ferry-cluster.ts';
import { BenchContext, writeResult } from './lib.ts';
import { createPgTable, PG, psqlCommand, selectAll, type PgBenchTable } from './pg-table.ts';
import { writeReadmeRow } from './readme-table.ts';
import { requireTools, runCommand } from './tools.ts';
import { tempDir } from '../test/helpers/cluster.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 5_000_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);

function ferryContender(
  ferry: FerryCluster,
  gateway: string,
  table: PgBenchTable,
  outRoot: string,
  checker: CsvChecker,
): Contender {
  return {
    name: `ferry-${gateway}`,
    async run(round: number): Promise<Sample> {
      const path = `${gateway}-${round}`;
      const r = await ferry.run(gateway, {
        name: `csv-${gateway}`,
        activities: [
          {
            name: 'orders',
            source: {
              linkedService: `pg-${gateway}`,
              table: `${table.schema}.orders`,
              partitionColumn: 'id',
              partitions: PARTITIONS,
            },
            sink: { linkedService: `out-${gateway}`, path },
          },
        ],
      });
      const dir = join(outRoot, path);
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.csv'))
        .map((f) => join(dir, f));
      const d = checker.check(`ferry (${gateway})`, await digestCsvFiles(files));
      rmSync(dir, { recursive: true, force: true });
      const copies = r.run.tasks.filter((t: any) => t.kind === 'copy');
      return {
        ms: r.ms,
        rssPeakBytes: r.rssPeakBytes,
        cpu: r.processes.cpu,
        detail: {
          files: files.length,
          rows: d.rows,
          hash: d.hash,
          nodes: [...new Set(copies.map((t: any) => t.node))].length,
        },
      };
    },
  };
}

export async function run(): Promise<void> {
  requireTools(['psql']);
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-pg-csv-');
    const outRoot = join(root, 'out');
    mkdirSync(outRoot);
    const table = await createPgTable(ctx, ROWS);
    const ferry = await startFerry(ctx, { gateways: { one: 1, two: 2 }, allowPaths: [root] });
    for (const gw of ['one', 'two']) {
      await ferry.linkedService(`pg-${gw}`, 'postgres', gw, { ...PG, password: '' });
      await ferry.linkedService(`out-${gw}`, 'filesystem', gw, { root: outRoot });
    }
    const checker = new CsvChecker(table);
    const psql: Contender = {
      name: 'psql',
      async run(round: number): Promise<Sample> {
        const file = join(root, `psql-${round}.csv`);
        const r = await runCommand(psqlCommand(`\\copy (${selectAll(table)}) to '${file}' csv header`));
        const d = checker.check('psql', await digestCsvFiles([file]));
        rmSync(file, { force: true });
        return { ms: r.ms, cpu: { psql: r.cpuSeconds ?? NaN }, detail: { rows: d.rows, hash: d.hash } };
      },
    };
    const c = await alternate('pg-to-csv', [
      ferryContender(ferry, 'one', table, outRoot, checker),
      psql,
      ferryContender(ferry, 'two', table, outRoot, checker),
    ]);
    const one = speedRatio(c, 'ferry-one', 'psql');
    const two = speedRatio(c, 'ferry-two', 'psql');
    const rss = Math.max(maxRss(c, 'ferry-one'), maxRss(c, 'ferry-two'));
    const result = {
      rows: ROWS,
      tableBytes: table.bytes,
      partitions: PARTITIONS,
      times: c.times,
      ratio: { oneNode: one, twoNodes: two, meaning: 'psql time / Ferry time (higher is better for Ferry)' },
      rssPeakMiB: { oneNode: mib(maxRss(c, 'ferry-one')), twoNodes: mib(maxRss(c, 'ferry-two')) },
      target: { ratio: 0.95 },
      peerFlagsTried: [
        'psql \\copy (SELECT ...) to FILE csv header (one backend, the tool a user reaches for)',
      ],
      rounds: c.rounds,
    };
    const file = writeResult('pg-to-csv', result);
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    const r2 = (x: number): string => x.toFixed(2);
    const met = Math.max(one.median, two.median) >= 0.95;
    writeReadmeRow({
      name: 'pg-to-csv',
      work: `${(ROWS / 1e6).toLocaleString('en')} M rows (${mib(table.bytes)} MiB heap) PostgreSQL -> CSV files, ${PARTITIONS} id ranges`,
      peer: `psql \\copy to a file: ${s(c.times['psql']!.median)}`,
      Ferry: `1 node: ${s(c.times['ferry-one']!.median)}, ratio ${r2(one.median)} (${r2(one.min)}-${r2(one.max)}); 2 nodes: ${s(c.times['ferry-two']!.median)}, ratio ${r2(two.median)} (${r2(two.min)}-${r2(two.max)}); peak node RSS ${mib(rss)} MiB`,
      target: 'Ferry/psql >= 0.95',
      verdict: met ? 'met' : 'not met',
    });
    process.stdout.write(
      `${JSON.stringify({ ...result, rounds: undefined }, null, 2)}\nwritten to ${file}\n`,
    );
  } finally {
    await ctx.close();
  }
}
