/**
 * The `ferry` command tree: global options, then every command group. Help shows the global
 * options (--service, --token, --service-ca, --json) on every command, not only on `ferry --help`.
 */
import { Command, Help, type Option } from 'commander';
import { ferryVersion } from '../common/version.ts';
import { gatewayCommands } from './gateway-commands.ts';
import { nodeCommands } from './node-commands.ts';
import { linkedServiceCommands } from './linked-service-commands.ts';
import { pipelineCommands } from './pipeline-commands.ts';
import { serviceCommands } from './service-commands.ts';
import { tokenCommands } from './token-commands.ts';
import { credentialCommands } from './credential-commands.ts';
import { auditCommands } from './audit-commands.ts';

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Ferry: a self-hosted data movement gateway of many nodes')
    .version(ferryVersion())
    .option('--service <url>', 'service URL (env FERRY_SERVICE; default http://127.0.0.1:8050)')
    .option('--token <token>', 'API token (env FERRY_TOKEN)')
    .option(
      '--service-ca <file>',
      "CA certificate (PEM) that signed the service's HTTPS certificate (env FERRY_SERVICE_CA)",
    )
    .option('--json', 'print JSON instead of tables')
    // Inherited by every command made below: each one's --help lists the global options too.
    .configureHelp({
      showGlobalOptions: true,
      // A command with an option of its own by the same name (`ferry node --service`) lists it once.
      visibleGlobalOptions(this: Help, cmd: Command): Option[] {
        const own = new Set(cmd.options.map((o) => o.long));
        return Help.prototype.visibleGlobalOptions.call(this, cmd).filter((o) => !own.has(o.long));
      },
    })
    .showHelpAfterError()
    .exitOverride();
  serviceCommands(program);
  gatewayCommands(program);
  nodeCommands(program);
  linkedServiceCommands(program);
  pipelineCommands(program);
  tokenCommands(program);
  credentialCommands(program);
  auditCommands(program);
  return program;
}
