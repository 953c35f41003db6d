import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { noImportCycle } from './no-import-cycle.ts';

describe('ferry/no-import-cycle', () => {
  let dir: string;
  let linter: Linter;
  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);
  const problems = (name: string, text: string): string[] => {
    write(name, text);
    const config = [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { ferry: { rules: { 'no-import-cycle': noImportCycle } } },
        rules: { 'ferry/no-import-cycle': 'error' as const },
      },
    ];
    return linter.verify(text, config, { filename: join(dir, name) }).map((m) => m.message);
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-no-import-cycle-'));
    linter = new Linter({ configType: 'flat', cwd: dir });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports an import that closes a circle through type-only imports, naming the circle', () => {
    write('b.ts', "import { c } from './c.ts';\nexport type B = typeof c;\n");
    write('c.ts', "import type { A } from './a.ts';\nexport const c: A | 1 = 1;\n");
    const a = "import type { B } from './b.ts';\nexport type A = B;\n";
    const found = problems('a.ts', a);
    assert.equal(found.length, 1);
    assert.match(found[0]!, /a\.ts -> .*b\.ts -> .*c\.ts -> .*a\.ts/);
    // A module that imports into the circle but is not on it is fine.
    assert.deepEqual(problems('d.ts', "import { c } from './c.ts';\nexport const d = c;\n"), []);
  });

  it('sees an edge go once the module on disk no longer imports', () => {
    write('p.ts', "import type { Q } from './q.ts';\nexport type P = Q;\n");
    write('q.ts', "import type { P } from './p.ts';\nexport type Q = P | 1;\n");
    const p = "import type { Q } from './q.ts';\nexport type P = Q;\n";
    assert.equal(problems('p.ts', p).length, 1);
    write('q.ts', 'export type Q = 1;\n');
    // Set the time apart so the change is seen however coarse the file system's clock is.
    utimesSync(join(dir, 'q.ts'), new Date(2000, 0, 1), new Date(2000, 0, 1));
    assert.deepEqual(problems('p.ts', p), []);
  });

  it('follows re-exports and dynamic imports', () => {
    write('f.ts', "export async function load() {\n  return import('./e.ts');\n}\n");
    assert.equal(problems('e.ts', "export * from './f.ts';\n").length, 1);
    assert.equal(problems('g.ts', "export { load } from './f.ts';\n").length, 0);
    assert.equal(
      problems('f.ts', "export async function load() {\n  return import('./e.ts');\n}\n").length,
      1,
    );
  });
});
