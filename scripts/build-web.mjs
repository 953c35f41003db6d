/**
 * Builds the portal (web/) into web/dist, which the service serves at `/`. Run by `npm ci` and
 * `npm install` (the `prepare` script), by `npm start` (`prestart`) and by `npm run build:web`.
 * Plain JavaScript, not TypeScript: npm may run it on an older Node than Ferry's (a production
 * install has no node@24). It does nothing when the build is newer than every source (so `npm start`
 * starts at once) and, in a copy of Ferry without web/ (a production install), says so and exits 0:
 * the service then explains at `/` how to build the portal. `--force` builds regardless.
 * The new build is made in a folder beside web/dist and swapped in, so a running service never sees
 * a half-written folder.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import console from 'node:console';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const web = join(root, 'web');
const dist = join(web, 'dist');
const force = process.argv.includes('--force');

/** The newest modification time of the files below `dir` (dist and dot files left out). */
function newest(dir) {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'dist') continue;
    const p = join(dir, entry.name);
    max = Math.max(max, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

if (!existsSync(join(web, 'index.html'))) {
  console.log('portal: no web/ sources in this copy of Ferry; nothing to build');
  process.exit(0);
}
const index = join(dist, 'index.html');
const lock = join(root, 'package-lock.json');
const sourcesAt = Math.max(newest(web), existsSync(lock) ? statSync(lock).mtimeMs : 0);
if (!force && existsSync(index) && statSync(index).mtimeMs >= sourcesAt) {
  console.log('portal: web/dist is up to date');
  process.exit(0);
}

const { build } = await import('vite');
const { default: react } = await import('@vitejs/plugin-react');
const tmp = join(web, `.dist-${process.pid}`);
const old = join(web, `.dist-old-${process.pid}`);
try {
  await build({
    root: web,
    configFile: false,
    logLevel: 'warn',
    plugins: [react()],
    base: '/',
    build: { outDir: tmp, emptyOutDir: true, sourcemap: false, reportCompressedSize: false },
  });
  if (existsSync(dist)) renameSync(dist, old);
  renameSync(tmp, dist);
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`portal: built into ${dist}`);
