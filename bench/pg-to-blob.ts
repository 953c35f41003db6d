/**
 * pg-to-blob: a 5 M-row PostgreSQL table to gzip CSV in Azure Blob (Azurite), Ferry against the
 * shell pipe a user would write (BENCHMARKS.md):
 *
 *   psql -c "\copy (SELECT ...) to stdout csv header" | gzip | rclone rcat :azureblob:CONTAINER/orders.csv.gz
 *
 * Ferry: id ranges (BENCH_PARTITIONS, default 4) on one node, sink `compression: gzip` (zlib's default
 * level, 6, as gzip's). The pipe is tuned first: one run per rclone flag set (chunk size, upload
 * concurrency); gzip stays at its default level so both sides do the same compression work.
 *
 * Every run writes to a fresh container, read back in full: each blob gunzipped, its lines digested
 * (csv-digest.ts) and checked against the table and the first output.
 *
 * Env: BENCH_ROWS (5,000,000), BENCH_PARTITIONS, BENCH_RUNS, BENCH_WARMUPS, BENCH_TUNE=0 with
 * BENCH_RCLONE_FLAGS.
 */
import { alternate, maxRss, mib, speedRatio, type Contender, type Sample } from './alternate.ts';
import { startAzuriteStore, type AzuriteStore } from './azurite-store.ts';
import { CsvChecker, digestCsvStreams, type CsvDigest } from './csv-digest.ts';
import { startFerry } from './ferry-cluster.ts';
import { BenchContext, writeResult } from './lib.ts';
import { createPgTable, PG, selectAll } from './pg-table.ts';
import { metered } from './process-meter.ts';
import { writeReadmeRow } from './readme-table.ts';
import { requireTools, runCommand } from './tools.ts';
import { tempDir } from '../test/helpers/cluster.ts';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 5_000_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);

const RCAT_GRID = [
  [],
  ['--azureblob-chunk-size', '16M'],
  ['--azureblob-chunk-size', '16M', '--azureblob-upload-concurrency', '4'],
  ['--azureblob-chunk-size', '64M', '--azureblob-upload-concurrency', '4'],
];

let containers = 0;

/** Digest of every blob in the container, gunzipped. */
async function digestContainer(
  store: AzuriteStore,
  container: string,
): Promise<{ d: CsvDigest; blobs: number }> {
  const names = await store.listNames(container);
  const d = await digestCsvStreams(
    names.map((n) => () => store.open(container, n)),
    true,
  );
  return { d, blobs: names.length };
}

export async function run(): Promise<void> {
  requireTools(['psql', 'gzip', 'rclone']);
  const ctx = new BenchContext();
  try {
    const root = tempDir(ctx, 'ferry-bench-pg-blob-');
    const table = await createPgTable(ctx, ROWS);
    const store = await startAzuriteStore(ctx);
    const ferry = await startFerry(ctx, { gateways: { one: 1 }, allowPaths: [root] });
    ferry.observe = { azurite: store.azurite.pid };
    await ferry.linkedService('pg', 'postgres', 'one', { ...PG, password: '' });
    const checker = new CsvChecker(table);

    const ferryContender: Contender = {
      name: 'ferry',
      async run(round: number): Promise<Sample> {
        const container = `ferry-${++containers}`;
        await store.createContainer(container);
        try {
          await ferry.linkedService(container, 'azure-blob', 'one', store.linkedProperties(container));
          const r = await ferry.run('one', {
            name: 'pg-blob',
            activities: [
              {
                name: 'orders',
                source: {
                  linkedService: 'pg',
                  table: `${table.schema}.orders`,
                  partitionColumn: 'id',
                  partitions: PARTITIONS,
                },
                sink: { linkedService: container, compression: 'gzip' },
              },
            ],
          });
          const { d, blobs } = await digestContainer(store, container);
          checker.check(`ferry round ${round}`, d);
          const gz = r.run.tasks.flatMap((t: any) => t.outputs).reduce((a: number, o: any) => a + o.bytes, 0);
          return {
            ms: r.ms,
            rssPeakBytes: r.rssPeakBytes,
            cpu: r.processes.cpu,
            detail: { blobs, gzipBytes: gz },
          };
        } finally {
          await store.deleteContainer(container);
        }
      },
    };

    const pipe = async (flags: readonly string[]): Promise<Sample> => {
      const container = `pipe-${++containers}`;
      await store.createContainer(container);
      try {
        const { value: r, report } = await metered({ azurite: store.azurite.pid }, () =>
          runCommand(
            `psql -X -q -v ON_ERROR_STOP=1 -h ${PG.host} -p ${PG.port} -U ${PG.user} -d ${PG.database} -c "$COPY_SQL" | gzip | rclone rcat ":azureblob:$CONTAINER/orders.csv.gz" --azureblob-sas-url "$SAS" -q ${flags.join(' ')}`,
            {
              env: {
                COPY_SQL: `\\copy (${selectAll(table)}) to stdout csv header`,
                CONTAINER: container,
                SAS: store.sasUrl(container),
              },
            },
          ),
        );
        const { d } = await digestContainer(store, container);
        checker.check(`pipe ${flags.join(' ')}`, d);
        return { ms: r.ms, cpu: { 'psql|gzip|rclone': r.cpuSeconds ?? NaN, ...report.cpu } };
      } finally {
        await store.deleteContainer(container);
      }
    };

    let best: string[] = (process.env['BENCH_RCLONE_FLAGS'] ?? '').split(' ').filter(Boolean);
    const tried: { flags: string; ms: number }[] = [];
    if (process.env['BENCH_TUNE'] !== '0') {
      await pipe([]); // warm-up
      for (const flags of RCAT_GRID) {
        const s = await pipe(flags);
        process.stderr.write(
          `pg-to-blob tuning: rclone rcat ${flags.join(' ') || '(defaults)'}: ${(s.ms / 1000).toFixed(2)} s\n`,
        );
        tried.push({ flags: flags.join(' ') || '(defaults)', ms: Math.round(s.ms) });
      }
      best = RCAT_GRID[tried.indexOf(tried.reduce((a, b) => (b.ms < a.ms ? b : a)))]!;
    }
    process.stderr.write(`pg-to-blob: rclone rcat ${best.join(' ') || '(defaults)'}\n`);
    const c = await alternate('pg-to-blob', [ferryContender, { name: 'pipe', run: () => pipe(best) }]);
    const ratio = speedRatio(c, 'ferry', 'pipe');
    const result = {
      rows: ROWS,
      tableBytes: table.bytes,
      partitions: PARTITIONS,
      rcloneFlags: best.join(' ') || '(defaults)',
      rcloneTuning: tried,
      times: c.times,
      ratio,
      meaning: 'ratio = pipe time / Ferry time, round by round (higher is better for Ferry)',
      ferryRssPeakMiB: mib(maxRss(c, 'ferry')),
      target: { ratio: 1.1 },
      rounds: c.rounds,
    };
    const file = writeResult('pg-to-blob', result);
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    writeReadmeRow({
      name: 'pg-to-blob',
      work: `${ROWS / 1e6} M rows PostgreSQL -> gzip CSV in Azurite, ${PARTITIONS} id ranges, 1 node`,
      peer: `psql \\copy to stdout / gzip / rclone rcat ${best.join(' ') || '(defaults)'}: ${s(c.times['pipe']!.median)}`,
      Ferry: `${s(c.times['ferry']!.median)}, ratio ${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}); peak node RSS ${mib(maxRss(c, 'ferry'))} MiB`,
      target: 'Ferry/pipe >= 1.1',
      verdict: ratio.median >= 1.1 ? 'met' : 'not met',
    });
    process.stdout.write(
      `${JSON.stringify(result, (k, v) => (k === 'rounds' ? undefined : v), 2)}\nwritten to ${file}\n`,
    );
  } finally {
    await ctx.close();
  }
}
