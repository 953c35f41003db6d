/** `npm run bench -- NAME`: runs bench/NAME.ts (each prepares its data, starts what it needs, stops it). */
const name = process.argv[2];
const known = [
  'dispatch',
  'failover',
  'pg-to-csv',
  'files-to-blob',
  'memory',
  'mysql-to-pg',
  'pg-to-blob',
  'pg-to-parquet',
];
if (!name || !known.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${known.join('|')}>\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { run(): Promise<void> };
await mod.run();
