// Sends the log's checkpoints to the BMC, in seal order, one at a time. The BMC's own
// anchor list is the record of what was sent: at start and after every failure it is
// read back and the checkpoints already in it are dropped from the queue, so an anchor
// whose answer was lost (the BMC or the agent died after the extend) is never sent twice,
// and one that never arrived is sent again. While the BMC cannot be reached, seals keep
// queueing (they are durable in the log directory, so a restart of the agent re-derives
// the queue from the log and the BMC's list); the outage and its end are reported to the
// caller, which writes them into the log as entries.
import { BmcApiError, type AnchorEntry, type BmcApiClient } from '../bmc/index.js';
import type { Seal } from '../log/index.js';

export interface AnchorerEvents {
  /** The first failed attempt of an outage. */
  onOutage?: (info: { error: string; queued: number }) => void;
  /** The BMC answered again after an outage; `sent` anchors went out late. */
  onRestored?: (info: { outageMs: number; queued: number; error: string }) => void;
  /** Every anchor the BMC acknowledged. */
  onAnchored?: (seal: Seal, entry: AnchorEntry) => void;
}

export class Anchorer {
  private readonly queue: Seal[] = [];
  private running = false;
  private stopped = false;
  private outageSince = 0;
  private outageError = '';
  private retryMs = 100;
  private retryTimer: NodeJS.Timeout | undefined;
  private needResync = true;
  private idleWaiters: Array<() => void> = [];
  anchored = 0;

  constructor(private readonly client: BmcApiClient, private readonly events: AnchorerEvents = {}, private readonly maxRetryMs = 2000) {}

  get queued(): number { return this.queue.length; }
  get inOutage(): boolean { return this.outageSince > 0; }

  /** Queues seals (oldest first); they are sent after every seal already queued. */
  enqueue(...seals: Seal[]): void {
    this.queue.push(...seals);
    this.pump();
  }

  /** False once the BMC refuses the host role its anchor list (the BMC's roles allow it only the verifier). */
  private canList = true;

  private async resync(): Promise<void> {
    if (!this.canList) { this.needResync = false; return; }
    let list;
    try {
      list = await this.client.anchors();
    } catch (e) {
      // 401/403: this token may only append. The queue then rests on what the BMC
      // acknowledged (kept by the caller); an anchor whose answer was lost may be sent
      // twice, which the verifier accepts as a resend of the same checkpoint.
      if (e instanceof BmcApiError && (e.status === 403 || e.status === 401)) { this.canList = false; this.needResync = false; return; }
      throw e;
    }
    const present = new Set(list.Members.map((m) => m.anchor));
    // Only a prefix can be present: checkpoints are sent in order, one at a time.
    let drop = 0;
    while (drop < this.queue.length && present.has((this.queue[drop] as Seal).checkpoint)) drop++;
    this.queue.splice(0, drop);
    this.needResync = false;
  }

  private pump(): void {
    if (this.running || this.stopped || this.retryTimer) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      // A seal enqueued while run() was returning (between its last check and here) saw
      // running = true and did not start a run: start it now.
      if (this.queue.length > 0 && !this.retryTimer) this.pump();
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.queue.length === 0 && !this.needResync) {
        for (const w of this.idleWaiters.splice(0)) w();
        return;
      }
      try {
        if (this.needResync) await this.resync();
        const seal = this.queue[0];
        if (!seal) continue;
        const entry = await this.client.anchor(seal.checkpoint);
        this.queue.shift();
        this.anchored++;
        this.events.onAnchored?.(seal, entry);
        if (this.outageSince > 0) {
          const outageMs = Date.now() - this.outageSince;
          this.outageSince = 0;
          this.retryMs = 100;
          this.events.onRestored?.({ outageMs, queued: this.queue.length, error: this.outageError });
        }
      } catch (e) {
        const error = (e as Error).message;
        if (this.outageSince === 0) {
          this.outageSince = Date.now();
          this.outageError = error;
          this.events.onOutage?.({ error, queued: this.queue.length });
        }
        this.needResync = true;
        if (this.stopped) return;
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.pump(); }, this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(this.retryMs * 2, this.maxRetryMs);
        return;
      }
    }
  }

  /** Resolves when the queue is empty or after `ms`; true when empty. */
  async settle(ms: number): Promise<boolean> {
    if (this.queue.length === 0 && !this.running && !this.needResync) return true;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; this.pump(); }
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(this.queue.length === 0), ms);
      this.idleWaiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
