// The two roles of the BMC API and their bearer tokens. The host (the monitored server)
// may only append anchors; the verifier may read everything and ask for quotes. Tokens
// are generated on first run into the state directory, readable by the owner only.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BmcError } from './errors.js';

export type Role = 'host' | 'verifier';
export const ROLES: readonly Role[] = ['host', 'verifier'];

export interface RoleTokens { host: string; verifier: string }

export function tokenPath(stateDir: string, role: Role): string { return join(stateDir, 'tokens', `${role}.token`); }

/** Reads the tokens, creating any that is missing (mode 0600 in a 0700 directory). */
export function ensureTokens(stateDir: string): RoleTokens {
  const dir = join(stateDir, 'tokens');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const read = (role: Role): string => {
    const p = tokenPath(stateDir, role);
    if (!existsSync(p)) writeFileSync(p, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(p, 0o600);
    const t = readFileSync(p, 'utf8').trim();
    if (t.length < 16) throw new BmcError('BMC_STATE', `token file ${p} holds fewer than 16 characters; delete it to generate a new token`);
    return t;
  };
  const tokens = { host: read('host'), verifier: read('verifier') };
  if (tokens.host === tokens.verifier) throw new BmcError('BMC_STATE', 'the host and verifier tokens are equal; delete one token file to regenerate it');
  return tokens;
}

/** Which role a bearer token belongs to, compared in constant time. */
export function roleOfToken(tokens: RoleTokens, presented: string): Role | undefined {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const p = digest(presented);
  let found: Role | undefined;
  for (const role of ROLES) if (timingSafeEqual(p, digest(tokens[role]))) found = role;
  return found;
}
