// The safety rails around every action: containers never acted on, and rate limits.
import { readFileSync } from 'node:fs';
import { globMatch } from '../policy/glob.js';
import type { RateLimit, RespondConfig } from './config.js';

/** Sliding-window limit per key: at most count takes within seconds. */
export class RateLimiter {
  private readonly taken = new Map<string, number[]>();

  constructor(private readonly limit: RateLimit, private readonly maxKeys = 10_000) {}

  /** True and counted when the key is under its limit at nowMs; false (not counted) when over it. */
  take(key: string, nowMs: number): boolean {
    const windowMs = this.limit.seconds * 1000;
    const times = (this.taken.get(key) ?? []).filter((t) => nowMs - t < windowMs);
    if (times.length >= this.limit.count) {
      this.taken.set(key, times);
      return false;
    }
    times.push(nowMs);
    // Bounded: a flood of distinct keys (containers come and go) forgets the oldest.
    if (!this.taken.has(key) && this.taken.size >= this.maxKeys) {
      const oldest = this.taken.keys().next().value;
      if (oldest !== undefined) this.taken.delete(oldest);
    }
    this.taken.set(key, times);
    return true;
  }

  /** Gives back the last take of key (the other limit refused the action). */
  untake(key: string): void {
    this.taken.get(key)?.pop();
  }
}

/** Whether a container is never to be acted on, and why. */
export class Protection {
  constructor(private readonly protect: RespondConfig['protect'], readonly ownContainerId: string | undefined) {}

  /** The reason it is protected, or undefined. labels undefined: not known (a label rule then protects, to be safe). */
  reason(c: { id: string; name: string }, labels: Readonly<Record<string, string>> | undefined): string | undefined {
    if (this.ownContainerId && c.id === this.ownContainerId) return 'the monitor\'s own container';
    for (const g of this.protect.names) if (c.name !== '' && globMatch(g, c.name)) return `name matches protect.names '${g}'`;
    for (const l of this.protect.labels) {
      if (labels === undefined) return `its labels are not known yet and protect.labels has '${l}'`;
      const eq = l.indexOf('=');
      const key = eq < 0 ? l : l.slice(0, eq);
      const value = labels[key];
      if (value !== undefined && (eq < 0 || globMatch(l.slice(eq + 1), value))) return `label matches protect.labels '${l}'`;
    }
    return undefined;
  }
}

/**
 * The id of the container this process runs in, if it runs in one: from the cgroup path
 * (docker-ID.scope, /docker/ID) or the mounts Docker makes from its container directory
 * (/var/lib/docker/containers/ID/hostname), which cgroup namespaces do not hide.
 */
export function ownContainerId(proc = '/proc/self'): string | undefined {
  const read = (file: string) => {
    try {
      return readFileSync(`${proc}/${file}`, 'utf8');
    } catch {
      return '';
    }
  };
  const byCgroup = /(?:docker-|\/docker\/)([0-9a-f]{64})/.exec(read('cgroup'));
  if (byCgroup) return byCgroup[1];
  // Only the mount over /etc/hostname counts: the host's own table holds Docker's shm
  // mounts below /var/lib/docker/containers/ID/ for every container.
  for (const line of read('mountinfo').split('\n')) {
    const f = line.split(' ');
    if (f[4] !== '/etc/hostname') continue;
    const m = /\/containers\/([0-9a-f]{64})\//.exec(f[3] ?? '');
    if (m) return m[1];
  }
  return undefined;
}
