/** The columns a MySQL source yields, for a sink to create its table from before any task runs. */
import type { ResolvedEndpointT } from '../../protocol/task.ts';
import type { ConnectorContext } from '../connector.ts';
import type { TableColumn } from '../table-columns.ts';
import { connectMysql } from './mysql-client.ts';
import { assertTableExists, pickColumns, readColumns } from './mysql-columns.ts';
import { compileMysqlSource, compileMysqlTarget } from './mysql-config.ts';

export async function describeMysql(
  source: ResolvedEndpointT,
  ctx: ConnectorContext,
): Promise<TableColumn[]> {
  const target = compileMysqlTarget(source);
  const options = compileMysqlSource(source, target.database);
  const session = await connectMysql(target, ctx.signal);
  try {
    await assertTableExists(session, options, target.linkedService, 'describe');
    const all = await readColumns(session, options, 'describe');
    return pickColumns(all, options.columns, options, target.linkedService, 'describe').map((c) => c.column);
  } finally {
    await session.close();
  }
}
