/**
 * The CLI's help, through the real `ferry` (walking `--help` from the top): every command says what it does, every command's --help lists the global options
 * (--service, --token, --json), `linked-service create --help` lists every store type and its
 * properties from the schemas the service validates with, and `ferry node --help` says that
 * `ferry node [options]` runs a node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from './helpers/cluster.ts';
import { STORES, STORE_TYPES } from '../src/protocol/stores.ts';

/** The commands a help text lists under "Commands:" (without `help`). */
function subcommands(help: string): string[] {
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of help.slice(at + '\nCommands:\n'.length).split('\n')) {
    if (!line.startsWith('  ')) break;
    const m = /^ {2}(\S+)/.exec(line);
    if (m?.[1] && m[1] !== 'help') names.push(m[1]);
  }
  return names;
}

test('every command has a description and lists the global options in its help', async () => {
  let seen = 0;
  const visit = async (path: string[]): Promise<void> => {
    const res = await cli([...path, '--help']);
    const name = `ferry ${path.join(' ')}`;
    assert.equal(res.code, 0, `${name} --help: ${res.stderr}`);
    seen++;
    const lines = res.stdout.split('\n');
    // Usage, a blank line, then the description.
    assert.match(lines[0] ?? '', /^Usage: ferry/);
    assert.match(lines[2] ?? '', /^\S/, `${name} --help has no description:\n${res.stdout}`);
    for (const flag of ['--service <url>', '--token <token>', '--json'])
      assert.ok(res.stdout.includes(`  ${flag}`), `${name} --help lacks ${flag}:\n${res.stdout}`);
    // Listed once, even where the command has an option of the same name (`ferry node run --service`).
    assert.equal(res.stdout.match(/^ +--service </gm)?.length, 1, `${name} --help:\n${res.stdout}`);
    for (const sub of subcommands(res.stdout)) await visit([...path, sub]);
  };
  await visit([]);
  assert.ok(seen > 30, `${seen} commands`);
});

test('linked-service create --help lists every store type and its properties', async () => {
  const res = await cli(['linked-service', 'create', '--help']);
  assert.equal(res.code, 0, res.stderr);
  assert.ok(STORE_TYPES.length >= 5);
  const typeLine = res.stdout.split('\n').find((l) => l.includes('--type <type>')) ?? '';
  assert.equal(typeLine.split('--type <type>')[1]?.trim(), STORE_TYPES.join(' | '));
  for (const type of STORE_TYPES) {
    const line = res.stdout.split('\n').find((l) => l.trim().startsWith(`${type} `));
    assert.ok(line, `no properties line for ${type}:\n${res.stdout}`);
    const schema = STORES[type].properties as { properties: Record<string, unknown>; required?: string[] };
    for (const prop of Object.keys(schema.properties)) {
      const required = (schema.required ?? []).includes(prop);
      assert.match(
        line,
        required ? new RegExp(`(^|\\s)${prop}\\*?(\\s|$)`) : new RegExp(`\\[${prop}\\*?\\]`),
        `${type}: ${prop} ${required ? 'required' : 'optional'} in: ${line}`,
      );
    }
  }
});

test('ferry node --help says that `ferry node [options]` runs a node', async () => {
  const res = await cli(['node', '--help']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /`ferry node \[options\]` without a command is `ferry node run \[options\]`/);
  const run = await cli(['node', 'run', '--help']);
  assert.match(run.stdout, /the default command: `ferry node \[options\]` is the same/);
  assert.match(run.stdout, /--allow-path <dir>/);
});
