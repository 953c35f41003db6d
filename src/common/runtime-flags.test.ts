import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NODE_FLAGS } from './runtime-flags.ts';

const root = new URL('../..', import.meta.url);

describe('runtime flags', () => {
  it('bin/ferry starts node with every flag', () => {
    const script = readFileSync(new URL('bin/ferry', root), 'utf8');
    const exec = script.split('\n').find((l) => l.startsWith('exec '));
    assert.ok(exec, 'bin/ferry has an exec line');
    for (const flag of NODE_FLAGS) assert.ok(exec.includes(` ${flag} `), `bin/ferry passes ${flag}`);
  });

  it('the npm scripts that run Ferry go through bin/ferry', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      scripts: Record<string, string>;
    };
    for (const name of ['start', 'ferry'])
      assert.match(pkg.scripts[name] ?? '', /^exec \.\/bin\/ferry\b/, `npm run ${name} runs bin/ferry`);
  });
});
