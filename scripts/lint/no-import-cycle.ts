/**
 * ESLint rule `ferry/no-import-cycle`: an import that closes a circle of modules, however long it is,
 * `import type` included. Two modules that import each other can be neither understood nor moved
 * apart, whether what they trade is erased at run time or not. eslint-plugin-import-x's no-cycle
 * skips type-only imports, and three of the four circles src/ once had closed only through such an
 * import.
 *
 * Each module's imports come from TypeScript's own import scanner (every `import`, `export ... from`
 * and `import()`), resolved as Node resolves relative specifiers (they name their file, `.ts` and
 * all); packages are not followed. A module is read again only when its modification time changes,
 * so a lint of the whole project reads each file once.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Rule } from 'eslint';
import ts from 'typescript';

const imported = new Map<string, { mtimeMs: number; files: string[] }>();

function modifiedAt(file: string): number | undefined {
  try {
    const stat = statSync(file);
    return stat.isFile() ? stat.mtimeMs : undefined;
  } catch {
    return undefined;
  }
}

/** The files `file` imports by a relative specifier, as saved on disk. */
function importsOf(file: string): string[] {
  const mtimeMs = modifiedAt(file);
  if (mtimeMs === undefined) return [];
  const known = imported.get(file);
  if (known?.mtimeMs === mtimeMs) return known.files;
  const scanned = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles;
  const files = scanned
    .map((ref) => ref.fileName)
    .filter((specifier) => specifier.startsWith('./') || specifier.startsWith('../'))
    .map((specifier) => resolve(dirname(file), specifier))
    .filter((target) => modifiedAt(target) !== undefined);
  imported.set(file, { mtimeMs, files });
  return files;
}

/** The shortest chain of imports from `from` back to `to` ([from, ..., to]), if there is one. */
function pathBack(from: string, to: string): string[] | undefined {
  const cameFrom = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  // An array's iterator sees what is pushed while it runs: a breadth-first walk.
  for (const file of queue) {
    if (file === to) {
      const route: string[] = [];
      for (let at: string | null | undefined = file; at; at = cameFrom.get(at)) route.unshift(at);
      return route;
    }
    for (const next of importsOf(file)) {
      if (cameFrom.has(next)) continue;
      cameFrom.set(next, file);
      queue.push(next);
    }
  }
  return undefined;
}

export const noImportCycle: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid imports that close a cycle of modules, type-only imports included.' },
    schema: [],
    messages: { cycle: 'This import closes a cycle: {{route}}.' },
  },
  create(context) {
    const self = resolve(context.physicalFilename);
    const check = (node: Rule.Node, source: unknown): void => {
      if (typeof source !== 'string' || !(source.startsWith('./') || source.startsWith('../'))) return;
      const target = resolve(dirname(self), source);
      if (target === self || modifiedAt(target) === undefined) return;
      const back = pathBack(target, self);
      if (!back) return;
      const route = [self, ...back].map((file) => relative(context.cwd, file)).join(' -> ');
      context.report({ node, messageId: 'cycle', data: { route } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => check(node, node.source?.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => check(node, node.source.type === 'Literal' ? node.source.value : undefined),
    };
  },
};
