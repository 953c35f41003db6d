/**
 * API tokens (migration 005): made, looked up by hash on every request (no cache, so a revoke made on
 * one service replica holds on every replica at the very next request), marked used, revoked.
 */
import type { Kysely } from 'kysely';
import type { ApiTokensTable, Schema } from '../schema.ts';
import { FerryError } from '../../../common/errors.ts';
import { hashToken, newId, randomToken } from '../../../common/crypto.ts';
import type { Role } from '../../roles.ts';

/** The name FERRY_ADMIN_TOKEN goes by: no stored token may take it. */
export const BOOTSTRAP_NAME = 'bootstrap';

/** A new token's secret: recognisable by its prefix (in a leaked log, a secret scanner). */
function newTokenSecret(): string {
  return `ferry_tok_${randomToken(32)}`;
}

/** Makes a token; returns its row and the token itself, which is kept nowhere. */
export async function createApiToken(
  db: Kysely<Schema>,
  input: { name: string; role: Role; createdBy: string },
  now: number,
): Promise<{ row: ApiTokensTable; token: string }> {
  if (input.name === BOOTSTRAP_NAME)
    throw new FerryError('conflict', `the token name "${BOOTSTRAP_NAME}" is taken by FERRY_ADMIN_TOKEN`, {
      hint: 'choose another name',
    });
  const taken = async () =>
    db.selectFrom('api_tokens').select(['revoked_at']).where('name', '=', input.name).executeTakeFirst();
  const conflict = (revoked: boolean) =>
    new FerryError(
      'conflict',
      `a token named "${input.name}" ${revoked ? 'existed (it is revoked)' : 'already exists'}`,
      {
        hint: 'choose another name: a name is never reused, so the audit log names one token',
      },
    );
  const before = await taken();
  if (before) throw conflict(before.revoked_at !== null);
  const token = newTokenSecret();
  const row: ApiTokensTable = {
    id: newId('tok'),
    name: input.name,
    role: input.role,
    token_hash: hashToken(token),
    created_at: now,
    created_by: input.createdBy,
    last_used_at: null,
    revoked_at: null,
    revoked_by: null,
  };
  try {
    await db.insertInto('api_tokens').values(row).execute();
  } catch (err) {
    // Two admins making the same name at once: the unique index lets one in.
    const after = await taken();
    if (after) throw conflict(after.revoked_at !== null);
    throw err;
  }
  return { row, token };
}

/** The token whose hash this is, revoked or not; undefined when none. */
export async function findApiTokenByHash(
  db: Kysely<Schema>,
  tokenHash: string,
): Promise<ApiTokensTable | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/**
 * Records that the token was used at `now`, unless that was already recorded within `everyMs`: at
 * most one write a minute per token, whichever replica served it.
 */
export async function markApiTokenUsed(
  db: Kysely<Schema>,
  id: string,
  now: number,
  everyMs: number,
): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ last_used_at: now })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - everyMs)]))
    .execute();
}

export async function listApiTokens(db: Kysely<Schema>): Promise<ApiTokensTable[]> {
  return db.selectFrom('api_tokens').selectAll().orderBy('created_at').orderBy('name').execute();
}

/** Revokes a token: from the next request on, on every replica, it is refused. */
export async function revokeApiToken(
  db: Kysely<Schema>,
  name: string,
  revokedBy: string,
  now: number,
): Promise<ApiTokensTable> {
  const row = await db.selectFrom('api_tokens').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row)
    throw new FerryError(
      'not_found',
      name === BOOTSTRAP_NAME
        ? 'the bootstrap token is not a stored token and cannot be revoked here'
        : `no token named "${name}"`,
      {
        hint:
          name === BOOTSTRAP_NAME
            ? 'change FERRY_ADMIN_TOKEN (or DATA_DIR/admin-token) and restart the service'
            : 'list tokens with `ferry token list`',
      },
    );
  if (row.revoked_at !== null)
    throw new FerryError(
      'conflict',
      `the token "${name}" was already revoked at ${new Date(row.revoked_at).toISOString()}`,
    );
  await db
    .updateTable('api_tokens')
    .set({ revoked_at: now, revoked_by: revokedBy })
    .where('id', '=', row.id)
    .where('revoked_at', 'is', null)
    .execute();
  return { ...row, revoked_at: now, revoked_by: revokedBy };
}
