/**
 * Loaded with `--import` by bin/ferry when Ferry is installed under a node_modules folder (`npm install
 * -g` of a tarball, or as a dependency): Node strips TypeScript types itself everywhere except under
 * node_modules, so this hook strips the types of Ferry's own .ts files there, the same way (erasable
 * syntax only, positions kept). Every other file loads as usual.
 */
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url).href;
const ownNodeModules = `${root}node_modules/`;

// Node says stripTypeScriptTypes is experimental on every process start; the stripping is the one
// Node does for .ts files elsewhere, so the warning is left out.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  if (String(warning).includes('stripTypeScriptTypes')) return;
  return emitWarning.call(process, warning, ...rest);
};

registerHooks({
  load(url, context, nextLoad) {
    if (url.startsWith(root) && !url.startsWith(ownNodeModules) && url.endsWith('.ts')) {
      const source = stripTypeScriptTypes(readFileSync(fileURLToPath(url), 'utf8'), { mode: 'strip' });
      return { format: 'module', source, shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});
