import { readFileSync } from 'node:fs';

/** Ferry's version, from package.json (read once at first use, not at import). */
let cached: string | undefined;
export function ferryVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return cached;
}
