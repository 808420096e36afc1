// Turns raw records into events: process table, container identity, wall-clock time,
// sequence numbers. Events leave in the order the kernel produced them; when a
// record's container is not yet known, it and every later record wait (bounded)
// while the key is resolved in the background, so the event loop never blocks.
import type { ContainerRef, EventArgs, ProcessRef, RawRecord, ResponseInfo, VigilEvent } from '../events/index.js';
import { describeRecord } from '../events/index.js';
import type { KeyIdentity } from '../containers/index.js';
import { environmentArgs, ProcessTable } from './processes.js';

/** What the pipeline needs of a resolver (ContainerResolver in production). */
export interface KeyResolver {
  lookup(key: bigint): KeyIdentity | undefined;
  /** pidNs: the pid namespace inode the record's task was in (a container's own tells it from a host service). */
  resolve(key: bigint, pidHint: number, pidNs?: number): Promise<KeyIdentity | undefined>;
  /**
   * A cgroup was made in the reference hierarchy (a cgroup record): its key's identity,
   * known from its path before any of its tasks' records. Optional: without it the
   * records are only counted.
   */
  learnCgroup?(key: bigint, path: string): void;
}

export interface PipelineOptions {
  host: string;
  resolver: KeyResolver;
  emit: (e: VigilEvent) => void;
  /** The name of the kernel rule (1 + index, from the record's header) the in-kernel kill acted for. */
  kernelRuleName?: (kernelRule: number) => string | undefined;
  /** Called for a key that turned out to be a host cgroup: drop it in the kernel from now on. */
  ignoreKey: (key: bigint) => void;
  /** Where this container's executable comes from: its writable layer, the image's layers, or neither (a mount). */
  exeOrigin?: (containerId: string, exe: string) => { written: boolean; inImage: boolean };
  /** Exec events carry the whole environment (capture.environment); else names and a few values only. */
  wholeEnvironment?: () => boolean;
  /** Longest a record waits for its container to be resolved. */
  resolveTimeoutMs?: number;
}

export interface PipelineStats {
  records: number;
  /** Cgroup records (identity, not events): counted in records, never emitted. */
  cgroups: number;
  emitted: number;
  droppedHost: number;
  unresolved: number;
  waiting: number;
}

const UNKNOWN_CONTAINER: ContainerRef = Object.freeze({ id: '', name: '', image: '', runtime: 'unknown' });
const NORMAL = { level: 'NORMAL', rules: [] as string[], action: 'none' } as const;

interface Waiting { record: RawRecord; process: ProcessRef }

function kernelKillResponse(outcome: 'done' | 'failed'): ResponseInfo {
  const info: ResponseInfo = { action: 'kill', target: 'process', layer: 'kernel', outcome, by: 'policy' };
  if (outcome === 'failed') info.error = 'bpf_send_signal failed (the task was exiting, or signals cannot be sent from this context)';
  return info;
}

/**
 * FIFO with O(1) push and shift: a burst of a new container's records may wait here by
 * the hundred thousand, and Array.prototype.shift is linear.
 */
class WaitQueue {
  private items: Array<Waiting | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(w: Waiting): void {
    this.items.push(w);
  }

  peek(): Waiting | undefined {
    return this.items[this.head];
  }

  shift(): Waiting | undefined {
    const w = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return w;
  }
}

export class EventPipeline {
  private readonly processes = new ProcessTable();
  private readonly queue = new WaitQueue();
  private readonly resolving = new Map<bigint, Promise<void>>();
  /** Keys whose cgroup could not be found: emitted without a container for a while, not looked up per event. */
  private readonly unknownUntil = new Map<bigint, number>();
  private readonly wallOffsetNs: bigint;
  private seq = 0;
  readonly stats: PipelineStats = { records: 0, cgroups: 0, emitted: 0, droppedHost: 0, unresolved: 0, waiting: 0 };

  constructor(private readonly opts: PipelineOptions) {
    // bpf_ktime_get_ns and process.hrtime both read CLOCK_MONOTONIC.
    this.wallOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  handle(record: RawRecord): void {
    this.stats.records++;
    if (record.kind === 'cgroup') {
      // Identity, not an event: learned now, even while earlier records wait, since it
      // only adds what a key is (it precedes every record of its tasks in the ring).
      this.stats.cgroups++;
      this.opts.resolver.learnCgroup?.(record.id, record.path);
      return;
    }
    const process = this.processes.apply(record);
    if (this.queue.length === 0) {
      const identity = this.identityNow(record);
      if (identity !== 'wait') {
        this.finish(record, process, identity);
        return;
      }
    }
    this.queue.push({ record, process });
    this.stats.waiting = this.queue.length;
    this.identityNow(record); // starts resolution of this record's key if needed
  }

  /** Drops process-table entries of processes gone for good (see ProcessTable.sweep). */
  sweepProcesses(): number {
    return this.processes.sweep();
  }

  /** Resolves once every record handled so far has left the pipeline. */
  async flush(): Promise<void> {
    while (this.queue.length > 0) {
      await Promise.all([...this.resolving.values()]);
      this.drain();
      if (this.resolving.size === 0 && this.queue.length > 0) this.drain(true);
    }
  }

  /** The identity to use now, 'wait' while a lookup is in flight, undefined when unknown. */
  private identityNow(record: RawRecord): KeyIdentity | undefined | 'wait' {
    const key = record.task.containerKey;
    const known = this.opts.resolver.lookup(key);
    if (known) return known;
    const until = this.unknownUntil.get(key);
    if (until !== undefined && until > Date.now()) return undefined;
    if (!this.resolving.has(key)) {
      const timeout = this.opts.resolveTimeoutMs ?? 3000;
      const lookup = Promise.race([
        this.opts.resolver.resolve(key, record.task.tgid, record.task.pidNs),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), timeout).unref()),
      ]).then(
        (identity) => {
          if (!identity) this.unknownUntil.set(key, Date.now() + 5000);
        },
        () => {
          this.unknownUntil.set(key, Date.now() + 5000);
        },
      ).finally(() => {
        this.resolving.delete(key);
        this.drain();
      });
      this.resolving.set(key, lookup);
    }
    return 'wait';
  }

  private drain(force = false): void {
    while (this.queue.length > 0) {
      const head = this.queue.peek() as Waiting;
      const identity = this.identityNow(head.record);
      if (identity === 'wait' && !force) break;
      this.queue.shift();
      this.finish(head.record, head.process, identity === 'wait' ? undefined : identity);
    }
    this.stats.waiting = this.queue.length;
  }

  private finish(record: RawRecord, process: ProcessRef, identity: KeyIdentity | undefined): void {
    if (identity?.type === 'host') {
      this.stats.droppedHost++;
      this.opts.ignoreKey(record.task.containerKey);
      return;
    }
    if (!identity) this.stats.unresolved++;
    const container = identity?.container ?? UNKNOWN_CONTAINER;
    this.stats.emitted++;
    if (record.kind === 'exec' && container.id !== '' && this.opts.exeOrigin) {
      const origin = this.opts.exeOrigin(container.id, process.exe);
      if (origin.written || !origin.inImage) {
        process.exeWritten = origin.written;
        process.exeInImage = origin.inImage;
        this.processes.markExeOrigin(record.task.tgid, origin.written, origin.inImage);
      }
    }
    const e = this.toEvent(record, process, container);
    // The in-kernel kill sent SIGKILL at this exec or at this call's sys_enter: the event says
    // so before its verdict, and the responder takes no action of its own (src/respond). Other
    // records the task makes before it dies (its exit, a capability check of the call) carry
    // the mark too, and are left as they are.
    const kr = record.task.kernelRule;
    if (kr && (record.kind === 'exec' || record.kind === 'syscall')) {
      const rule = this.opts.kernelRuleName?.(kr);
      e.response = { action: 'kill', target: 'process', layer: 'kernel', outcome: 'done', by: 'policy', ...(rule ? { rule } : {}) };
    } else if (!kr && record.task.kernelKill) {
      // The allow-list check (bpf/allowlist.h) killed at this very call, or failed to.
      e.response = kernelKillResponse(record.task.kernelKill);
    }
    this.opts.emit(e);
  }

  private toEvent(r: RawRecord, process: ProcessRef, container: ContainerRef): VigilEvent {
    // Literal objects in one fixed key order, no spreads: this runs for every event.
    const t = r.task;
    const seq = ++this.seq;
    const time = (t.timeNs + this.wallOffsetNs).toString();
    const host = this.opts.host;
    const namespaces = { mnt: t.mntNs, pid: t.pidNs, cgroupId: t.cgroupId.toString(), containerKey: t.containerKey.toString() };
    const verdict = { level: NORMAL.level, rules: [], action: NORMAL.action };
    switch (r.kind) {
      case 'exec': {
        const args: EventArgs = { filename: r.filename, argv: r.argv };
        if (r.env) Object.assign(args, environmentArgs(r.env, this.opts.wholeEnvironment?.() ?? false));
        if (r.envTruncated) args['envp_truncated'] = true;
        if (r.exeTruncated) args['exe_truncated'] = true;
        return { seq, time, host, kind: 'exec', syscall: 'execve', args, ret: 0, container, process, namespaces, verdict };
      }
      case 'fork':
        return { seq, time, host, kind: 'fork', syscall: 'fork', args: { child_pid: r.childPid, child_ns_pid: r.childNsPid }, ret: r.childPid, container, process, namespaces, verdict };
      case 'exit':
        return { seq, time, host, kind: 'exit', syscall: 'exit', args: { code: r.exitCode, signal: r.signal }, ret: null, container, process, namespaces, verdict };
      default: {
        const d = describeRecord(r);
        if (!d) throw new Error(`no description for record kind ${r.kind}`);
        if (d.error) return { seq, time, host, kind: d.kind, syscall: d.syscall, args: d.args, ret: d.ret, error: d.error, container, process, namespaces, verdict };
        return { seq, time, host, kind: d.kind, syscall: d.syscall, args: d.args, ret: d.ret, container, process, namespaces, verdict };
      }
    }
  }

  /**
   * The record of a countermeasure (src/respond): numbered in the same sequence as the events,
   * about the container (and process) acted on, INSECURE so alerts outputs carry it too.
   */
  responseEvent(info: ResponseInfo, about: { container: ContainerRef; process: ProcessRef | undefined; trigger: number | undefined; rules: string[] }): VigilEvent {
    const args: EventArgs = { action: info.action, target: info.target, layer: info.layer, outcome: info.outcome, by: info.by };
    if (info.rule) args['rule'] = info.rule;
    if (about.trigger !== undefined) args['trigger_seq'] = about.trigger;
    if (info.reason) args['reason'] = info.reason;
    if (info.error) args['error'] = info.error;
    return {
      seq: ++this.seq,
      time: (process.hrtime.bigint() + this.wallOffsetNs).toString(),
      host: this.opts.host,
      kind: 'response',
      syscall: '',
      args,
      ret: null,
      container: about.container,
      // An operator's request names no process: the agent itself acted.
      process: about.process ?? { pid: process.pid, nsPid: 0, ppid: 0, parent: '', comm: 'vigil', exe: '', args: [], argsTruncated: false, uid: 0, gid: 0, caps: [], containerSetup: false, ancestors: [], entered: false, stdio: [], exeWritten: false, exeInImage: true, parentExe: '', name: 'vigil' },
      namespaces: { mnt: 0, pid: 0, cgroupId: '0', containerKey: '0' },
      verdict: { level: 'INSECURE', rules: about.rules, action: info.action },
      response: info,
    };
  }

  /**
   * An entry the agent makes itself about a container (no kernel record behind it): the
   * allow-list state of a container, a call it made before its list was loaded. Its process
   * is pid 0: nothing to act on.
   */
  noticeEvent(kind: 'syscall' | 'agent', syscall: string, args: EventArgs, container: ContainerRef, containerKey: bigint): VigilEvent {
    return {
      seq: ++this.seq,
      time: (process.hrtime.bigint() + this.wallOffsetNs).toString(),
      host: this.opts.host,
      kind,
      syscall,
      args,
      ret: null,
      container,
      process: { pid: 0, nsPid: 0, ppid: 0, parent: '', comm: '', exe: '', args: [], argsTruncated: false, uid: 0, gid: 0, caps: [], containerSetup: false, ancestors: [], entered: false, stdio: [], exeWritten: false, exeInImage: true, parentExe: '', name: '' },
      namespaces: { mnt: 0, pid: 0, cgroupId: '0', containerKey: containerKey.toString() },
      verdict: { ...NORMAL, rules: [] },
    };
  }

  /**
   * An entry that says records were lost (in the kernel, or an output's lines): loss is
   * logged, never hidden. Kernel loss names its container (key, and identity when known)
   * and why (reason: ring_full or budget).
   */
  lostEvent(recordKind: string, count: bigint, about?: { key: bigint; container: ContainerRef | undefined; reason: string }): VigilEvent {
    const args: EventArgs = { record_kind: recordKind, lost: count.toString() };
    if (about) args['reason'] = about.reason;
    return {
      seq: ++this.seq,
      time: (process.hrtime.bigint() + this.wallOffsetNs).toString(),
      host: this.opts.host,
      kind: 'lost',
      syscall: '',
      args,
      ret: null,
      container: about?.container ?? UNKNOWN_CONTAINER,
      process: { pid: 0, nsPid: 0, ppid: 0, parent: '', comm: 'vigil', exe: '', args: [], argsTruncated: false, uid: 0, gid: 0, caps: [], containerSetup: false, ancestors: [], entered: false, stdio: [], exeWritten: false, exeInImage: true, parentExe: '', name: 'vigil' },
      namespaces: { mnt: 0, pid: 0, cgroupId: '0', containerKey: (about?.key ?? 0n).toString() },
      verdict: { ...NORMAL, rules: [] },
    };
  }
}
