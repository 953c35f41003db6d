/** What every admin command needs: the API client and the output mode, from flags <- env. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ApiClient } from './api-client.ts';
import { readEnv } from '../common/config.ts';
import { readPemFile } from '../common/tls.ts';
import { checkServiceUrl } from '../common/service-url.ts';

export interface CliContext {
  api: ApiClient;
  json: boolean;
}

interface GlobalFlags {
  service?: string;
  token?: string;
  serviceCa?: string;
  json?: boolean;
}

/** The CA bundle that signed the service's certificate: --service-ca, else FERRY_SERVICE_CA. */
export function serviceCaFrom(flag: string | undefined): Buffer | undefined {
  const path = flag ?? readEnv().serviceCa;
  return path === undefined ? undefined : readPemFile(path, flag ? '--service-ca' : 'FERRY_SERVICE_CA');
}

export function cliContext(cmd: Command): CliContext {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const env = readEnv();
  const service =
    flags.service !== undefined
      ? checkServiceUrl(flags.service, '--service')
      : env.service !== undefined
        ? checkServiceUrl(env.service, 'FERRY_SERVICE')
        : 'http://127.0.0.1:8050';
  // Convenience for `ferry up` on this machine: its token file, when nothing else is given.
  const localToken = join('ferry-data', 'admin-token');
  const token =
    flags.token ??
    env.token ??
    env.adminToken ??
    (existsSync(localToken) ? readFileSync(localToken, 'utf8').trim() : undefined);
  return { api: new ApiClient(service, token, serviceCaFrom(flags.serviceCa)), json: flags.json === true };
}
