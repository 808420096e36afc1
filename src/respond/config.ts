// The `respond` section of the agent's configuration: dry run, the stop timeout, the
// containers never acted on, the rate limits and the control socket. Every problem names
// where it is and what is expected.

export interface RateLimit { count: number; seconds: number }

export interface RespondConfig {
  /** Log every action as "would …" and take none. */
  dryRun: boolean;
  /** Seconds Docker waits after SIGTERM before SIGKILL on `stop`. */
  stopTimeoutSeconds: number;
  protect: {
    /** Globs on the container's name (`*`, `?`). */
    names: string[];
    /** `KEY` (any value) or `KEY=GLOB`. */
    labels: string[];
  };
  rateLimit: {
    /** Actions one rule may cause, across containers. */
    perRule: RateLimit;
    /** Actions on one container: its processes' kills, and container actions, each counted on their own. */
    perContainer: RateLimit;
  };
  /** The control socket's path ('' : no control interface); its token is PATH.token. */
  socket: string;
}

export const DEFAULT_SOCKET = '/run/vigil/respond.sock';

export const DEFAULT_RESPOND: RespondConfig = {
  dryRun: false,
  stopTimeoutSeconds: 5,
  protect: { names: [], labels: [] },
  // A rule that fires on every container of a host (a bad rule, a flood) acts at most ten
  // times a minute; one container takes at most five actions a minute (a fork bomb of
  // reverse shells: five kills, the rest logged as limited).
  rateLimit: { perRule: { count: 10, seconds: 60 }, perContainer: { count: 5, seconds: 60 } },
  socket: DEFAULT_SOCKET,
};

export class RespondConfigError extends Error {
  readonly code = 'VIGIL_BAD_RESPOND_CONFIG';
}

const KEYS = ['dryRun', 'stopTimeoutSeconds', 'protect', 'rateLimit', 'socket'];

function mapping(v: unknown, where: string, keys: string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RespondConfigError(`${where}: must be a mapping with keys ${keys.join(', ')}`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw new RespondConfigError(`${where}: unknown key '${k}'; known keys are ${keys.join(', ')}`);
  return v as Record<string, unknown>;
}

function strings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) throw new RespondConfigError(`${where}: must be a list of non-empty strings`);
  return v as string[];
}

function limit(v: unknown, where: string, fallback: RateLimit): RateLimit {
  if (v === undefined) return fallback;
  const m = mapping(v, where, ['count', 'seconds']);
  const count = m['count'] ?? fallback.count;
  const seconds = m['seconds'] ?? fallback.seconds;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new RespondConfigError(`${where}.count: must be a whole number of actions, 1 or more, got ${JSON.stringify(count)}`);
  if (typeof seconds !== 'number' || !(seconds > 0) || seconds > 86_400) throw new RespondConfigError(`${where}.seconds: must be a number of seconds above 0 and at most 86400, got ${JSON.stringify(seconds)}`);
  return { count, seconds };
}

export function parseRespondConfig(v: unknown, where: string): RespondConfig {
  const m = mapping(v ?? {}, where, KEYS);
  const out: RespondConfig = structuredClone(DEFAULT_RESPOND);
  if (m['dryRun'] !== undefined) {
    if (typeof m['dryRun'] !== 'boolean') throw new RespondConfigError(`${where}.dryRun: must be true or false`);
    out.dryRun = m['dryRun'];
  }
  if (m['stopTimeoutSeconds'] !== undefined) {
    const t = m['stopTimeoutSeconds'];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 600) throw new RespondConfigError(`${where}.stopTimeoutSeconds: must be a whole number of seconds from 0 to 600, got ${JSON.stringify(t)}`);
    out.stopTimeoutSeconds = t;
  }
  if (m['protect'] !== undefined) {
    const p = mapping(m['protect'], `${where}.protect`, ['names', 'labels']);
    if (p['names'] !== undefined) out.protect.names = strings(p['names'], `${where}.protect.names`);
    if (p['labels'] !== undefined) out.protect.labels = strings(p['labels'], `${where}.protect.labels`);
  }
  if (m['rateLimit'] !== undefined) {
    const r = mapping(m['rateLimit'], `${where}.rateLimit`, ['perRule', 'perContainer']);
    out.rateLimit.perRule = limit(r['perRule'], `${where}.rateLimit.perRule`, out.rateLimit.perRule);
    out.rateLimit.perContainer = limit(r['perContainer'], `${where}.rateLimit.perContainer`, out.rateLimit.perContainer);
  }
  if (m['socket'] !== undefined) {
    if (typeof m['socket'] !== 'string' || (m['socket'] !== '' && !m['socket'].startsWith('/'))) throw new RespondConfigError(`${where}.socket: must be an absolute path, or '' for no control socket`);
    out.socket = m['socket'];
  }
  return out;
}
