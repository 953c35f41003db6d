/**
 * The service's URL as given by a person (`--service`, FERRY_SERVICE): http:// or https://, with a
 * host. `127.0.0.1:8050` or `localhost:8050` (no scheme) gets an error that shows the fix, not the
 * URL parser's `Invalid URL` (or a "protocol localhost: not supported").
 */
import { FerryError } from './errors.ts';

/** Returns the URL without trailing slashes, or throws a bad_request naming `source` and the fix. */
export function checkServiceUrl(value: string, source: string): string {
  const trimmed = value.trim();
  let url: URL | undefined;
  try {
    url = new URL(trimmed);
  } catch {
    url = undefined;
  }
  if (url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '')
    return trimmed.replace(/\/+$/, '');
  const schemeless = !/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed);
  const guess = schemeless && trimmed !== '' ? `http://${trimmed}` : undefined;
  // `--service URL` for a flag, `FERRY_SERVICE=URL` for the environment.
  const as = (url: string): string => `${source}${source.startsWith('--') ? ' ' : '='}${url}`;
  const guessOk = guess !== undefined && URL.canParse(guess) && new URL(guess).hostname !== '';
  throw new FerryError(
    'bad_request',
    `${source} "${value}" is not an http:// or https:// URL${schemeless && trimmed !== '' ? ' (it has no scheme)' : ''}`,
    {
      hint: guessOk
        ? `write it with its scheme: ${as(guess)} (https:// if the service serves HTTPS)`
        : `e.g. ${as('http://127.0.0.1:8050')}`,
    },
  );
}
