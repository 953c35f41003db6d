/**
 * The summary table in bench/README.md: one row per benchmark, replaced (or added) by the benchmark
 * that just ran, then the file is run through prettier so the table stays aligned.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cluster.ts';
import { machine, nonStandardSettings } from './lib.ts';

const COLUMNS = ['name', 'work', 'peer', 'Ferry', 'target', 'verdict', 'machine'] as const;
export type ReadmeRow = Record<Exclude<(typeof COLUMNS)[number], 'machine'>, string>;

const README = join(ROOT, 'bench', 'README.md');

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(' | ')
    .map((c) => c.trim());
}

export function writeReadmeRow(row: ReadmeRow): void {
  const unlike = nonStandardSettings();
  if (unlike.length > 0) {
    process.stderr.write(`bench/README.md not updated: a non-standard run (${unlike.join(', ')})\n`);
    return;
  }
  const m = machine();
  const full: Record<string, string> = {
    ...row,
    machine: `${m.cores} cores, ${m.memoryGiB} GiB, ${m.date}`,
  };
  const lines = readFileSync(README, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^\|\s*name\s*\|/.test(l));
  if (start < 0) throw new Error('bench/README.md has no summary table');
  let end = start + 2;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  const header = cells(lines[start]!);
  const rows = lines.slice(start + 2, end).map((l) => {
    const c = cells(l);
    return Object.fromEntries(COLUMNS.map((name) => [name, c[header.indexOf(name)] ?? '']));
  });
  const at = rows.findIndex((r) => r['name'] === row.name);
  if (at >= 0) rows[at] = full;
  else rows.push(full);
  // Cells are one line each; a `|` inside one would split it.
  const line = (values: readonly string[]): string =>
    `| ${values.map((v) => v.replace(/\|/g, '/').replace(/\n/g, ' ')).join(' | ')} |`;
  const table = [
    line(COLUMNS),
    line(COLUMNS.map(() => '---')),
    ...rows.map((r) => line(COLUMNS.map((c) => r[c] ?? ''))),
  ];
  lines.splice(start, end - start, ...table);
  writeFileSync(README, lines.join('\n'));
  spawnSync(join(ROOT, 'node_modules/.bin/prettier'), ['--write', README], { stdio: 'ignore' });
}
