/**
 * The `ferry` command: parse -> options -> library call -> exit code. The only module that calls
 * process.exit, and only once stdout and stderr have drained: a pipe takes 64 KiB at a time, and an
 * exit before it is read would cut a larger output. Failures print one line (`ferry: <reason>`, then
 * the hint if there is one) and exit 1.
 */
import { CommanderError } from 'commander';
import { toFerryError } from '../common/errors.ts';
import { buildProgram } from './program.ts';

async function main(): Promise<number> {
  try {
    await buildProgram().parseAsync(process.argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const fe = toFerryError(err);
    process.stderr.write(`ferry: ${fe.message}${fe.hint ? `\n  hint: ${fe.hint}` : ''}\n`);
    return 1;
  }
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or it failed). */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable || stream.writableLength === 0) return resolve();
    // Writes complete in order: the callback of an empty write runs after every earlier chunk.
    stream.write('', () => resolve());
  });
}

// A reader that goes away (`ferry ... | head -1`) is not an error of ours: stop writing, exit.
for (const s of [process.stdout, process.stderr])
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });

const code = await main();
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);
