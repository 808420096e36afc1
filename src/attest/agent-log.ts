// The agent's side of the tamper-evident log: one EventOutput that the agent puts first
// among its outputs, so every entry (events with verdicts, lost entries, the agent's own
// records) is chained into the log directory, with the log's seq, before any other
// output writes it. It also writes the agent's own records (start with the
// self-measurement, heartbeat, anchoring outage and its end, log recovery, stop), and
// hands each seal to the Anchorer when a BMC is configured.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogWriter, listSegments, forEachLine, parseSealLine, type Seal } from '../log/index.js';
import { BmcApiClient } from '../bmc/index.js';
import type { VigilEvent, Verdict } from '../events/index.js';
import { Anchorer } from './anchorer.js';
import { changeRule, describeChange, type ProgramWatch } from './programs.js';

export interface LogSettings {
  dir: string;
  /** Seal after this many entries. */
  batchSize: number;
  /** Seal this long after a batch's first entry. */
  batchMs: number;
  /** Rotate segments at this size. */
  segmentBytes: number;
  /** A heartbeat entry this often (0: none). */
  heartbeatSeconds: number;
  /** Re-check the BPF programs' links this often (0: never). */
  programCheckMs: number;
}
export const DEFAULT_LOG_SETTINGS: Omit<LogSettings, 'dir'> = { batchSize: 1000, batchMs: 1000, segmentBytes: 64 * 1024 * 1024, heartbeatSeconds: 10, programCheckMs: 500 };

/** What the agent hands start() to re-measure its programs: the watch, and whether the programs should still be on (false once it detaches them itself). */
export interface ProgramWatchHandle { watch: ProgramWatch; active: () => boolean }

export interface AnchorSettings {
  bmc: string;
  tokenFile: string;
  /** PEM file of the CA (or the self-signed certificate) the BMC's HTTPS certificate must chain to. */
  caFile?: string;
  /** SHA-256 fingerprint (hex) of the BMC's certificate (the DER; its tls-cert.sha256), pinned. */
  pinSha256?: string;
}

export interface AgentLogDeps {
  host: string;
  log: (msg: string) => void;
  /** The canonical JSON of an entry (the JSON-lines rendering). */
  render: (e: VigilEvent) => string;
  /** Writes one of the agent's own records to every output (the log first). */
  emit: (e: VigilEvent) => void;
}

export function bmcClient(s: AnchorSettings): BmcApiClient {
  let token: string;
  try { token = readFileSync(s.tokenFile, 'utf8').trim(); } catch (e) {
    throw new Error(`--bmc-token ${s.tokenFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (token === '') throw new Error(`--bmc-token ${s.tokenFile}: the file is empty`);
  let ca: string | undefined;
  if (s.caFile) {
    try { ca = readFileSync(s.caFile, 'utf8'); } catch (e) { throw new Error(`--bmc-ca ${s.caFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  }
  return new BmcApiClient(s.bmc, token, { ca, pinSha256: s.pinSha256 });
}

const NORMAL: Verdict = { level: 'NORMAL', rules: [], action: 'none' };
const PROCESS = Object.freeze({
  pid: process.pid, nsPid: process.pid, ppid: process.ppid, parent: '', comm: 'vigil', exe: process.execPath, args: Object.freeze([] as string[]) as string[], argsTruncated: false,
  uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, caps: Object.freeze([] as string[]) as string[], containerSetup: false, ancestors: Object.freeze([] as string[]) as string[],
  entered: false, stdio: Object.freeze([] as string[]) as string[], exeWritten: false, exeInImage: true, parentExe: '', name: 'vigil',
});
const NO_CONTAINER = Object.freeze({ id: '', name: '', image: '', runtime: 'unknown' });

/** One of the agent's own records, in the event shape (kind 'agent', syscall = what it records). */
export function agentRecord(host: string, what: string, args: Record<string, unknown>, verdict: Verdict = NORMAL): VigilEvent {
  return {
    seq: 0, time: (BigInt(Date.now()) * 1_000_000n).toString(), host, kind: 'agent', syscall: what, args: args as VigilEvent['args'], ret: null,
    container: NO_CONTAINER as VigilEvent['container'], process: PROCESS as VigilEvent['process'], namespaces: { mnt: 0, pid: 0, cgroupId: '0', containerKey: '0' },
    verdict: { ...verdict, rules: [...verdict.rules] },
  };
}

/** Every seal in the log directory, in order (for the anchoring queue at start). */
function allSeals(dir: string): Seal[] {
  const out: Seal[] = [];
  for (const seg of listSegments(dir)) {
    forEachLine(readFileSync(seg.path), (line, n) => { const s = parseSealLine(line, `${seg.path} line ${n}`); if (s) out.push(s); });
  }
  return out;
}

/** The seals after the last one the BMC acknowledged (all of them when none was). */
function unsentSeals(dir: string): Seal[] {
  const seals = allSeals(dir);
  const path = join(dir, 'anchored.json');
  if (!existsSync(path)) return seals;
  let acked: { checkpoint?: unknown };
  try { acked = JSON.parse(readFileSync(path, 'utf8')) as { checkpoint?: unknown }; } catch { return seals; }
  const i = seals.findIndex((s) => s.checkpoint === acked.checkpoint);
  return i < 0 ? seals : seals.slice(i + 1);
}

export class AgentLog {
  readonly writer: LogWriter;
  private anchorer: Anchorer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private programTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly startedAt = Date.now();
  private lastSeal: Seal | undefined;

  constructor(private readonly settings: LogSettings, anchor: AnchorSettings | undefined, private readonly deps: AgentLogDeps) {
    // The client first: a bad token file stops the start before the log is touched.
    const client = anchor ? bmcClient(anchor) : undefined;
    this.writer = LogWriter.open(settings.dir, {
      batchSize: settings.batchSize, batchMs: settings.batchMs, segmentBytes: settings.segmentBytes,
      render: (e) => deps.render(e as VigilEvent),
      onSeal: (s) => { this.lastSeal = s; this.anchorer?.enqueue(s); },
      onError: (m) => deps.log(m),
    });
    if (client) {
      this.anchorer = new Anchorer(client, {
        onOutage: ({ error, queued }) => {
          deps.log(`the BMC cannot be reached (${error}); sealing locally, anchors are sent when it answers again`);
          this.own('anchor-outage', { bmc: anchor?.bmc ?? '', error, queued }, { level: 'INSECURE', rules: ['BMC unreachable'], action: 'alert', severity: 'high' });
        },
        onAnchored: (seal, entry) => {
          // What the BMC acknowledged, so a restart sends only the seals after it.
          try {
            const path = join(settings.dir, 'anchored.json');
            writeFileSync(`${path}.tmp`, JSON.stringify({ batch: seal.batch, checkpoint: seal.checkpoint, bmcSeq: entry.seq, time: entry.time }) + '\n', { mode: 0o640 });
            renameSync(`${path}.tmp`, path);
          } catch (e) {
            deps.log(`cannot record the acknowledged anchor in ${settings.dir}: ${(e as Error).message}`);
          }
        },
        onRestored: ({ outageMs, queued, error }) => {
          deps.log(`the BMC answers again after ${outageMs} ms; sending the queued anchors`);
          this.own('anchor-restored', { bmc: anchor?.bmc ?? '', outageMs, queued, error });
        },
      });
      this.anchorer.enqueue(...unsentSeals(settings.dir));
    }
  }

  /** Writes the records of the start: a recovered torn tail, then the self-measurement (sealed and anchored at once). */
  start(measurement: Record<string, unknown>, programs?: ProgramWatchHandle): void {
    const r = this.writer.recovery;
    if (r.tornBytes > 0 || r.unsealed > 0) {
      this.own('log-recovered', { tornBytes: r.tornBytes, tornSha256: r.tornSha256, unsealed: r.unsealed, lastSeal: r.lastSeal?.batch ?? 0 });
    }
    this.own('start', { pid: process.pid, heartbeatSeconds: this.settings.heartbeatSeconds, ...measurement });
    // Others' programs already on our hooks: sealed and anchored with the start record.
    if (programs && programs.watch.present.length > 0) this.own('programs-present', { programs: programs.watch.present });
    this.writer.seal('time');
    if (this.settings.heartbeatSeconds > 0) {
      this.heartbeat = setInterval(() => this.own('heartbeat', {
        uptimeMs: Date.now() - this.startedAt, nextSeq: this.writer.nextSeq, anchored: this.anchorer?.anchored ?? 0, queued: this.anchorer?.queued ?? 0,
      }), this.settings.heartbeatSeconds * 1000);
      this.heartbeat.unref();
    }
    if (programs && this.settings.programCheckMs > 0) {
      let failing = false;
      this.programTimer = setInterval(() => {
        if (!programs.active()) return;
        let changes;
        try { changes = programs.watch.check(); failing = false; } catch (e) {
          if (!failing) this.deps.log(`cannot re-measure the BPF programs: ${(e as Error).message}`);
          failing = true;
          return;
        }
        // Another vigil agent's copy of our own programs on our hooks: written down, not an alert.
        const same = programs.watch.takeSameCode();
        if (same.length > 0) this.own('programs-added', { sameCodeAsOurs: true, changes: same });
        if (changes.length === 0) return;
        for (const c of changes) this.deps.log(`ALERT: ${describeChange(c)}: ${c.change === 'added' ? 'it runs beside the monitor, and can change or hide what the monitor sees' : 'the monitor no longer sees what it hooked there'}`);
        const rules = [...new Set(changes.map(changeRule))];
        this.own('programs-changed', { changes }, { level: 'INSECURE', rules, action: 'alert', severity: 'critical' });
      }, this.settings.programCheckMs);
      this.programTimer.unref();
    }
  }

  private own(what: string, args: Record<string, unknown>, verdict?: Verdict): void {
    // After close (an outage while the last anchors are being sent): the log takes no more
    // entries; the next start's outage record, or its anchoring, tells the rest.
    if (this.closing) { this.deps.log(`not written to the closed log: ${what} ${JSON.stringify(args)}`); return; }
    this.deps.emit(agentRecord(this.deps.host, what, args, verdict));
  }

  /** The EventOutput the agent writes through. */
  write(e: VigilEvent): void { this.writer.append(e); }
  /** None: entries the segment cannot take (a full disk) wait in memory until it can (src/log/store.ts). */
  readonly lost = 0;
  drained(): undefined { return undefined; }
  reopen(): Promise<void> { return Promise.resolve(); }

  /** Writes the stop record, seals, and gives the anchors up to `anchorWaitMs` to reach the BMC. */
  async close(anchorWaitMs = 5000): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.programTimer) clearInterval(this.programTimer);
    this.own('stop', { uptimeMs: Date.now() - this.startedAt });
    this.closing = true;
    this.writer.close();
    if (this.anchorer) {
      const done = await this.anchorer.settle(anchorWaitMs);
      if (!done) this.deps.log(`${this.anchorer.queued} anchors not yet sent to the BMC; they are sent at the next start`);
      this.anchorer.stop();
    }
  }

  get lastCheckpoint(): Seal | undefined { return this.lastSeal; }
}

/** What openAgentLog needs of the agent's configuration. */
export interface AgentLogConfig { host: string; log?: LogSettings; anchor?: AnchorSettings; policies: string[]; defaultPolicy: boolean }
