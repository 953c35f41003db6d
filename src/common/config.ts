/**
 * The one place that reads the environment and configuration files. Options are merged as
 * defaults <- config file <- environment <- flags; this module supplies the middle two.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { FerryError } from './errors.ts';

export interface FerryEnv {
  service: string | undefined;
  /** PEM file of the CA that signed the service's HTTPS certificate. */
  serviceCa: string | undefined;
  token: string | undefined;
  adminToken: string | undefined;
  masterKey: string | undefined;
  store: string | undefined;
  nodeVersion: string | undefined;
  /** The gateway authentication key for `ferry node` (instead of --key, which `ps` shows). */
  nodeKey: string | undefined;
  /** `ferry node backup|restore`: the backup password, when no --password-file is given. */
  backupPassword: string | undefined;
  logLevel: string | undefined;
  ci: boolean;
  /** FERRY_POISON_RELEASED=1 (`npm test` sets it): pooled buffers are overwritten when given back. */
  poisonReleased: boolean;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): FerryEnv {
  const get = (k: string): string | undefined => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  return {
    service: get('FERRY_SERVICE'),
    serviceCa: get('FERRY_SERVICE_CA'),
    token: get('FERRY_TOKEN'),
    adminToken: get('FERRY_ADMIN_TOKEN'),
    masterKey: get('FERRY_MASTER_KEY'),
    store: get('FERRY_STORE'),
    nodeVersion: get('FERRY_NODE_VERSION'),
    nodeKey: get('FERRY_NODE_KEY'),
    backupPassword: get('FERRY_BACKUP_PASSWORD'),
    logLevel: get('FERRY_LOG_LEVEL'),
    ci: get('CI') === 'true',
    poisonReleased: get('FERRY_POISON_RELEASED') === '1',
  };
}

/** Reads a JSON or YAML file into a plain object; the error names the file and the problem. */
export function readStructuredFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FerryError(
      'bad_request',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  try {
    return /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new FerryError(
      'bad_request',
      `${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

/** What checks a config file's options: a schema validator (src/protocol/validate.ts) fits. */
export interface ConfigChecker<T> {
  /** Returns the value typed, or throws a FerryError naming `what` and every wrong key at once. */
  parse(value: unknown, what: string): T;
}

/**
 * A config file for `ferry service` / `ferry node`: an object whose keys are the options' names,
 * checked against the options' schema so that a misspelt key or a wrong type is refused, naming
 * the file and the key, instead of being silently ignored.
 */
export function readConfigFile<T extends object>(path: string | undefined, checker: ConfigChecker<T>): T {
  if (path === undefined) return checker.parse({}, '(no config file)');
  const value = readStructuredFile(path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FerryError('bad_request', `${path} must hold an object of options`);
  }
  return checker.parse(value, path);
}
