// Records the kernel did not queue, told as `lost` entries that say whose they were.
// The kernel counts each such record under its container key, kind and reason (a full
// ring buffer, or the container's spent budget) and host-wide by kind; this reads both,
// writes one entry per container, kind and reason for what is new since the last read,
// and one entry with no container for what the host-wide totals hold beyond that (a
// per-container counter evicted from its LRU map before it was read). Every record lost
// is in exactly one entry.
import type { ContainerLoss, LossSnapshot } from '../sensor/index.js';
import type { ContainerRef } from '../events/index.js';
import type { KeyIdentity } from '../containers/index.js';

export type LossReason = ContainerLoss['reason'];

/** One entry to write: count records of one kind, of one container (key 0n and no container: unattributed). */
export interface LossEntry { key: bigint; container: ContainerRef | undefined; kind: number; reason: LossReason; count: bigint }

export interface LossSource { lossSnapshot(): LossSnapshot }
export interface LossResolver {
  lookup(key: bigint): KeyIdentity | undefined;
  resolve(key: bigint, pidHint: number): Promise<KeyIdentity | undefined>;
}

const RESOLVE_TIMEOUT_MS = 2000;

export class LossReporter {
  /** Last count read per container counter (key|kind|reason). */
  private readonly seen = new Map<string, bigint>();
  /** Per reason|kind: records told so far (per-container entries and unattributed ones). */
  private readonly told = new Map<string, bigint>();
  /** Records told in entries, every reason and kind. */
  total = 0n;
  private running: Promise<void> | undefined;

  constructor(
    private readonly source: LossSource,
    private readonly resolver: LossResolver | undefined,
    private readonly write: (e: LossEntry) => void,
  ) {}

  /** Reads the counters and writes what is new; one read at a time (a second call waits for the first, then reads again). */
  async report(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.readOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async readOnce(): Promise<void> {
    const snap = this.source.lossSnapshot();
    const present = new Set<string>();
    const fresh: ContainerLoss[] = [];
    for (const c of snap.byContainer) {
      const id = `${c.key}|${c.kind}|${c.reason}`;
      present.add(id);
      const before = this.seen.get(id) ?? 0n;
      // A count lower than last time: the key was evicted and made again since.
      const delta = c.count >= before ? c.count - before : c.count;
      this.seen.set(id, c.count);
      if (delta > 0n) fresh.push({ ...c, count: delta });
    }
    // An evicted key starts again from zero if it comes back.
    for (const id of this.seen.keys()) if (!present.has(id)) this.seen.delete(id);

    const identities = new Map<bigint, ContainerRef | undefined>();
    for (const key of new Set(fresh.map((c) => c.key))) identities.set(key, await this.identity(key));
    // Kernel keys in a stable order: entries of one container stay together.
    fresh.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.reason.localeCompare(b.reason) || a.kind - b.kind));
    for (const c of fresh) {
      this.tell(c.reason, c.kind, c.count);
      this.write({ key: c.key, container: identities.get(c.key), kind: c.kind, reason: c.reason, count: c.count });
    }
    // What the host-wide totals hold beyond every entry so far belongs to no counter we read.
    for (const [reason, totals] of [['ring_full', snap.totals.ring], ['budget', snap.totals.budget]] as const) {
      for (const [kind, total] of totals) {
        const rest = total - (this.told.get(`${reason}|${kind}`) ?? 0n);
        if (rest <= 0n) continue;
        this.tell(reason, kind, rest);
        this.write({ key: 0n, container: undefined, kind, reason, count: rest });
      }
    }
  }

  private tell(reason: LossReason, kind: number, n: bigint): void {
    const id = `${reason}|${kind}`;
    this.told.set(id, (this.told.get(id) ?? 0n) + n);
    this.total += n;
  }

  /** The container of a key: cached, else looked up (bounded): a lost entry waits for it, not for ever. */
  private async identity(key: bigint): Promise<ContainerRef | undefined> {
    if (!this.resolver) return undefined;
    const known = this.resolver.lookup(key);
    if (known) return known.type === 'container' ? known.container : undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const found = await Promise.race([
        this.resolver.resolve(key, 0),
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), RESOLVE_TIMEOUT_MS);
        }),
      ]);
      return found?.type === 'container' ? found.container : undefined;
    } catch {
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
