/**
 * Who may call what. A user's API token has one role; each REST route declares the lowest role that
 * may call it (its `config.access`, src/service/app.ts), and a role may call everything a lower role
 * may: reader < operator < admin. A route that declares nothing is admin-only (default-deny). Node
 * routes take a node's token and public routes no token; neither is a role.
 */

export const ROLES = ['reader', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who may call a route: a user role (the lowest that may), a node's token, or anyone. */
export type RouteAccess = Role | 'node' | 'public';

/** What each role is for, for help texts and the README. */
export const ROLE_MEANING: Record<Role, string> = {
  reader: 'read everything the API shows, except gateway keys, the token list and the audit log',
  operator:
    'what a reader may, and run pipelines, drain/resume/set-limit nodes, test linked services, resync gateway credentials',
  admin: 'everything: gateways, keys, nodes, linked services, pipelines, tokens, the audit log',
};

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether a token of role `have` may call a route that needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/**
 * The callers a route of `access` takes, as its OpenAPI operation lists them (`x-ferry-roles`): the
 * roles that may call it, `node` for a node's token, `anyone` for a public route.
 */
export function allowedCallers(access: RouteAccess): string[] {
  if (access === 'public') return ['anyone'];
  if (access === 'node') return ['node'];
  return ROLES.filter((r) => roleAllows(r, access)).reverse();
}

/** The sentence the operation's description ends with. */
export function accessSentence(access: RouteAccess): string {
  if (access === 'public') return 'Open: no token needed.';
  if (access === 'node') return "Called by nodes, with a node's token; no API token is accepted.";
  const roles = allowedCallers(access);
  return `Allowed roles: ${roles.join(', ')}${roles.length < ROLES.length ? ' (any other token gets 403 forbidden)' : ''}.`;
}
