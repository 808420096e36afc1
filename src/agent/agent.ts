// Wires the parts of the agent: sensor → drain worker → decoder → pipeline → outputs.
import { BpfSensor, RingBufferDrain, hostNamespace, probeStrongerHooks, strongerHooksLine } from '../sensor/index.js';
import { decodeBatch, layout, syscallName, syscallNumber, type ContainerRef, type VigilEvent } from '../events/index.js';
import { ContainerResolver, DockerClient, detectCgroupHierarchy, type CgroupHierarchy, type ContainerFacts } from '../containers/index.js';
import { EventPipeline, type PipelineStats } from './pipeline.js';
import { openOutput, type EventOutput } from './outputs.js';
import type { AgentConfig } from './config.js';
import { captureForPolicy, pushCapture, type CaptureConfig } from './capture.js';
import { commandOf, findEscapedProcesses, statOf } from './escapees.js';
import { renderMetrics } from './metrics.js';
import { LossReporter, type LossEntry } from './loss.js';
import { ensureDirectory, writeFileAtomic } from './atomic-file.js';
import { captureNeeds, compileKernelRules, defaultKernelMask, kernelMaskFor, loadPolicies, PolicyError, type KernelProgram, type PolicySet, type RuleInfo } from '../policy/index.js';
import { openAgentLog, programWatch, selfMeasurement, type AgentLog } from '../attest/index.js';
import { accessSync, constants, existsSync, lstatSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { DockerActions, Protection, Responder, ownContainerId, startControlServer, type ControlServer } from '../respond/index.js';
import type { ResponseInfo } from '../events/index.js';
import { AllowlistManager, type AllowlistReport } from './allowlists.js';

const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(layout.RECORD_KIND).map(([n, v]) => [v, n.toLowerCase()]));
/** How often the maps only the agent writes are compared with what it wrote (checkControlMaps). */
const MAP_CHECK_MS = 1000;

/** outputLost: lines the outputs could not write (a full disk), each told in a `lost` entry once they could again. */
export interface AgentSummary extends PipelineStats { lost: number; decodeErrors: number; outputLost: number }

export interface SyscallCountsReport {
  time: string;
  host: string;
  containers: Array<{ key: string; id: string; name: string; image: string; total: number; syscalls: Record<string, number> }>;
}

export class Agent {
  private sensor: BpfSensor | undefined;
  private drain: RingBufferDrain | undefined;
  private resolver: ContainerResolver | undefined;
  private pipeline: EventPipeline | undefined;
  private outputs: EventOutput[] = [];
  private lostTimer: NodeJS.Timeout | undefined;
  private mapCheckFailed = false;
  private mapCheckTimer: NodeJS.Timeout | undefined;
  private metricsTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private loss: LossReporter | undefined;
  private lossLogged = 0;
  private decodeErrors = 0;
  private ignoreFailures = 0;
  private policy: PolicySet | undefined;
  private policyWatchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  /** What the kernel was last told to send (the configured capture with the policy's needs). */
  private capture: CaptureConfig | undefined;
  /** The tamper-evident log (--log): the first output, so it gives every entry its seq. */
  private agentLog: AgentLog | undefined;
  private kernelSettings: { hostMountNs: number; cgroupMode: CgroupHierarchy['mode']; startedNs: bigint } | undefined;
  private responder: Responder | undefined;
  private control: ControlServer | undefined;
  private limitedLogged = 0;
  private allowlists: AllowlistManager | undefined;
  /** The kill rules the kernel decides (bpf/enforce.bpf.c), and the containers whose masks it holds. */
  private kernelProgram: KernelProgram | undefined;
  private readonly kernelContainers = new Map<bigint, ContainerRef>();
  private protection: Protection | undefined;

  /**
   * onFatal hears of failures the agent cannot run on after (the ring buffer reader
   * died): the caller stops the agent and exits non-zero rather than watching blind.
   */
  constructor(
    private readonly config: AgentConfig,
    private readonly log: (msg: string) => void,
    private readonly onFatal: (message: string) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const hierarchy = detectCgroupHierarchy();
    // Outputs and report files first: a bad path is reported before any BPF work is done.
    checkWritableFile(this.config.countsPath, '--counts');
    checkWritableFile(this.config.metricsPath, '--metrics');
    // Policies next: a bad one stops the start with every problem as FILE:LINE:COL.
    this.policy = this.loadPolicy();
    this.outputs = this.config.outputs.map((spec) => openOutput(spec, (m) => this.log(m), { lostEvent: (n, reason) => this.outputLostEvent(spec.path, n, reason) }));
    if (this.config.log) {
      const agentLog = openAgentLog(this.config, (m) => this.log(m), (e) => { for (const o of this.outputs) o.write(e); });
      this.agentLog = agentLog;
      this.outputs.unshift(agentLog);
    }
    // The in-kernel kill is loaded only when some kill rule compiles to kernel clauses, and
    // never in a dry run (nothing is killed: user space logs "would").
    this.kernelProgram = compileKernelRules(this.policy);
    const enforce = !this.config.respond.dryRun && this.kernelProgram.clauses.length > 0;
    this.sensor = BpfSensor.open({ btfPath: this.config.btfPath, ringBufferBytes: this.config.ringBufferBytes, enforce });
    const sensor = this.sensor;
    for (const note of sensor.unavailable) this.log(note);
    this.capture = this.captureFor(this.policy);
    pushCapture(sensor, this.capture);
    if (this.config.allowlists.enabled) {
      this.allowlists = new AllowlistManager({
        settings: this.config.allowlists,
        dockerSocket: this.config.dockerSocket,
        kernel: sensor,
        policy: () => this.policy,
        dryRun: () => this.config.respond.dryRun,
        imageOf: (c) => this.resolver?.facts(c.id)?.imageId || c.image,
        known: (key) => this.resolver?.lookup(key) !== undefined,
        report: (key, c, r) => this.allowlistReport(key, c, r),
        log: (m) => this.log(m),
      });
    }
    this.resolver = new ContainerResolver(hierarchy, {
      docker: new DockerClient(this.config.dockerSocket),
      log: (m) => this.log(m),
      onContainer: (key, c) => {
        this.maybeStream(key, c);
        this.allowlists?.onContainer(key, c);
        this.setKernelMask(key, c);
      },
    });
    await this.resolver.start();
    this.startResponder();
    this.pipeline = new EventPipeline({
      host: this.config.host,
      resolver: this.resolver,
      // The verdict is decided here, in kernel order, before the event is written anywhere;
      // a reload swaps this.policy between two events, never during one.
      emit: (e) => this.judgeAndWrite(e),
      exeOrigin: (id, exe) => exeOrigin(this.resolver?.facts(id), exe),
      kernelRuleName: (n) => this.kernelProgram?.rules[n - 1],
      wholeEnvironment: () => this.capture?.environment ?? false,
      ignoreKey: (key) => {
        try {
          sensor.ignoreCgroup(key);
        } catch (e) {
          // The kernel keeps sending this cgroup's records; user space still drops them.
          if (this.ignoreFailures++ < 10) this.log(`cannot mark cgroup ${key} as the host's in the kernel: ${(e as Error).message}`);
        }
      },
    });
    const pipeline = this.pipeline;
    this.drain = new RingBufferDrain(
      sensor.ringBufferFd,
      (buf) => {
        decodeBatch(buf, (r) => pipeline.handle(r), (e) => {
          if (this.decodeErrors++ < 10) this.log(`skipped a bad record: ${e.message}`);
        });
        // Backed-up outputs hold the acknowledgement: loss then shows in the kernel counters.
        const waits = this.outputs.map((o) => o.drained()).filter((p): p is Promise<void> => p !== undefined);
        return waits.length > 0 ? Promise.all(waits).then(() => undefined) : undefined;
      },
      {},
      (e) => this.onFatal(e.message),
    );
    const hostMountNs = hostNamespace('mnt');
    // Only now do the programs start sending: nothing is produced before a reader exists.
    this.kernelSettings = { hostMountNs, cgroupMode: hierarchy.mode, startedNs: process.hrtime.bigint() };
    this.configureKernel();
    this.pushKernelRules();
    // The self-measurement, once the programs the kernel runs can be read back.
    this.agentLog?.start(selfMeasurement(sensor, this.config), programWatch(sensor));
    // After the programs are on: what an escapee forks from here on is followed by the
    // kernel, and what it forked before is in /proc for the scan.
    this.rememberEscapedProcesses(hierarchy, hostMountNs);
    this.watchPolicies();
    await this.startControl();
    this.loss = new LossReporter(sensor, this.resolver, (e) => this.writeLost(e));
    this.lostTimer = setInterval(() => {
      this.loss?.report().catch((e: Error) => this.log(`cannot read the kernel's loss counters: ${e.message}`));
    }, 1000);
    this.lostTimer.unref();
    // The maps the agent alone writes, compared with what it wrote (and put back): root on the
    // host can turn the monitor off or clear a kill mask through them without touching a program.
    this.mapCheckTimer = setInterval(() => this.checkControlMaps(), MAP_CHECK_MS);
    this.mapCheckTimer.unref();
    // Bounds the process table when exit records were lost (a full ring buffer).
    this.sweepTimer = setInterval(() => this.pipeline?.sweepProcesses(), 60_000);
    this.sweepTimer.unref();
    if (this.config.metricsPath) {
      this.metricsTimer = setInterval(() => this.writeMetrics(), 5000);
      this.metricsTimer.unref();
    }
  }

  /**
   * The verdict is decided here, in kernel order, before the event is written anywhere; a
   * reload swaps this.policy between two events, never during one. Countermeasures: a kill
   * happens here, before the event is written; the response record follows the event.
   */
  private judgeAndWrite(e: VigilEvent): void {
    if (this.policy) e.verdict = this.policy.judge(e);
    const after = this.responder?.respond(e);
    for (const o of this.outputs) o.write(e);
    after?.();
  }

  /** What the allow-list manager decided for a container, as an entry of the log (and a line on stderr). */
  private allowlistReport(key: bigint, c: ContainerRef, r: AllowlistReport): void {
    if (!this.pipeline) return;
    const who = c.name || c.id.slice(0, 12);
    if (r.type === 'before-list') {
      // Judged like the kernel's own report: the same rule, the same verdict; nothing to kill (it is past).
      const args = { nr: r.nr, not_in_allowlist: true, ...(r.late ? { reported_late: true } : { before_allowlist: true }), ...(r.abi !== 'x86_64' ? { abi: r.abi } : {}) };
      this.judgeAndWrite(this.pipeline.noticeEvent('syscall', r.syscall, args, c, key));
      return;
    }
    const { type, ...rest } = r;
    const args: Record<string, string | number | boolean | string[]> = { state: type };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) args[k] = v as string | number | boolean | string[];
    this.judgeAndWrite(this.pipeline.noticeEvent('agent', 'allowlist', args, c, key));
    if (r.type === 'loaded') this.log(`allow-list of ${r.image} loaded for ${who}: ${r.size} system calls${r.added.length ? ` (${r.added.length} added by policy)` : ''}, calls outside it ${r.enforce === 'kill' ? 'killed in the kernel' : r.enforce === 'report' ? 'reported' : `killed from user space (the rule has exceptions)`}${r.cached ? ' (cached analysis)' : ''}`);
    else this.log(`allow-list not checked for ${who} (${r.image}): ${r.reason}`);
  }

  // Countermeasures (src/respond, docs/respond.md): the responder and the control socket.
  private startResponder(): void {
    const resolver = this.resolver;
    const own = ownContainerId();
    this.responder = new Responder({
      config: this.config.respond,
      docker: new DockerActions(this.config.dockerSocket),
      record: (info, about) => this.writeResponse(info, { ...about, rules: info.rule ? [info.rule] : [] }),
      labels: (id) => resolver?.facts(id)?.labels,
      rules: () => this.rules(),
      log: (m) => this.log(m),
      ownContainerId: own,
    });
    if (this.config.respond.dryRun) this.log('dry run: countermeasures are logged as "would ..." and not taken');
    if (own) this.log(`running in container ${own.slice(0, 12)}: it is never acted on`);
  }

  /**
   * Fills the in-kernel kill's maps from the kernel program (start, reload). A container not
   * resolved yet gets the rules that are kill everywhere, unless protect.names or
   * protect.labels are set: then none (its name and labels are not known yet: the start
   * race), and user space, which checks protection first, kills it once its verdict is made.
   */
  private pushKernelRules(): void {
    const sensor = this.sensor;
    const program = this.kernelProgram;
    if (!sensor || !program) return;
    if (this.config.respond.dryRun) {
      if (program.clauses.length > 0) this.log(`dry run: the in-kernel kill is not loaded; ${program.rules.length} kill rule(s) it could decide are logged as "would kill" by user space`);
      return;
    }
    if (!sensor.enforcing) {
      if (program.clauses.length > 0) this.log(`${program.rules.join(', ')}: the kernel could decide, but the in-kernel kill was not loaded at start (restart the agent); user space kills`);
      return;
    }
    const protect = this.config.respond.protect;
    const guarded = protect.names.length > 0 || protect.labels.length > 0;
    const mask = guarded ? 0 : defaultKernelMask(program);
    sensor.setKernelRules(program.clauses, mask, true, syscallNumber);
    for (const [key, c] of this.kernelContainers) this.setKernelMask(key, c);
    for (const r of program.report) {
      if (r.enforced !== 'none') this.log(`kill rule '${r.rule}': the kernel kills (${r.enforced === 'full' ? 'every case' : `${r.clauses.length} case(s); the rest in user space`})`);
    }
    if (guarded) this.log('in-kernel kill: containers are not killed in the kernel until resolved (protect.names/labels are set)');
    this.log(strongerHooksLine(probeStrongerHooks()));
  }

  /** The kernel rules on for one resolved container: 0 for a protected one. */
  private setKernelMask(key: bigint, c: ContainerRef): void {
    const sensor = this.sensor;
    const program = this.kernelProgram;
    const policy = this.policy;
    if (!sensor?.enforcing || !program || !policy) return;
    this.kernelContainers.set(key, c);
    if (this.kernelContainers.size > 16384) this.kernelContainers.delete(this.kernelContainers.keys().next().value as bigint);
    this.protection ??= new Protection(this.config.respond.protect, ownContainerId());
    const isProtected = this.protection.reason(c, this.resolver?.facts(c.id)?.labels) !== undefined;
    try {
      sensor.setContainerKillMask(key, kernelMaskFor(program, policy, c, isProtected));
    } catch (e) {
      this.log(`cannot set the in-kernel kill rules of ${c.name || c.id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }

  private writeResponse(info: ResponseInfo, about: Parameters<EventPipeline['responseEvent']>[1]): void {
    if (!this.pipeline) return;
    const e: VigilEvent = this.pipeline.responseEvent(info, about);
    for (const o of this.outputs) o.write(e);
    // stderr gets every action and the first limited ones; the outputs get every record.
    if (info.outcome === 'limited' && this.limitedLogged++ >= 10) return;
    const what = `${info.action} ${info.target === 'process' ? `process ${about.process?.pid ?? '?'} of ` : ''}${about.container.name || about.container.id.slice(0, 12)}`;
    this.log(`response: ${what} (${info.layer}, by ${info.by}${info.rule ? ` for '${info.rule}'` : ''}): ${info.outcome}${info.error ? `: ${info.error}` : info.reason ? ` (${info.reason})` : ''}`);
  }

  /** The control socket is an extra: a path in use (another agent) or a bad directory leaves it off, said in one line. */
  private async startControl(): Promise<void> {
    const path = this.config.respond.socket;
    const responder = this.responder;
    if (!path || !responder) return;
    try {
      this.control = await startControlServer(path, (r) => responder.request(r.action, r.container, r.timeoutSeconds), (m) => this.log(m));
    } catch (e) {
      this.log(`control socket ${path} not opened (${(e as Error).message}); \`vigil respond\` cannot reach this agent`);
    }
  }

  /** The configured capture plus what the policy's rules need (only those, when every output is alerts-only). */
  private captureFor(policy: PolicySet): CaptureConfig {
    const alertsOnly = this.config.outputs.length > 0 && this.config.outputs.every((o) => o.insecureOnly);
    const needs = captureNeeds(policy);
    for (const b of needs.broad) this.log(`rule '${b.rule}' ${b.reason}`);
    return captureForPolicy(this.config.capture, needs, alertsOnly);
  }

  private configureKernel(): void {
    if (!this.sensor || !this.kernelSettings || !this.capture) return;
    const capture = this.capture;
    this.sensor.configure({
      ...this.kernelSettings,
      pathFilter: !capture.paths.all,
      portFilter: capture.ports.length > 0,
      capabilityDedup: capture.capabilities === 'first',
      countSyscalls: capture.countSyscalls,
      captureEnvironment: capture.environment,
      allowlists: this.config.allowlists.enabled,
    });
    // Budget and wakeup mark (vigil_submit in bpf/common.h): what a container may queue
    // while the ring is under pressure, and how much unread data wakes the reader.
    const ring = this.sensor.ringBufferBytes;
    const b = this.config.budget;
    this.sensor.setBudget({
      rate: b.rate, burst: b.burst,
      pressureBytes: Math.floor((ring * b.pressurePercent) / 100),
      wakeupBytes: this.config.wakeupBytes ?? Math.min(64 * 1024, ring / 4),
    });
  }

  private loadPolicy(): PolicySet {
    return loadPolicies(this.config.policies, {
      defaults: this.config.defaultPolicy,
      facts: (c) => (c.id ? this.resolver?.facts(c.id) : undefined),
    }).set;
  }

  /** One line on the policy in force, for the ready message. */
  policySummary(): string {
    const from = [this.config.defaultPolicy ? 'the default rule set' : '', ...this.config.policies].filter(Boolean);
    return `${this.policy?.size ?? 0} rules${from.length ? ` from ${from.join(', ')}` : ''}`;
  }

  /** The rules in force. */
  rules(): RuleInfo[] {
    return this.policy?.list() ?? [];
  }

  /**
   * Loads the policies again (SIGHUP, or a policy file changed). A set with problems is
   * refused whole and the last good one stays in force; events are never held or lost:
   * the swap happens between two events.
   */
  reloadPolicy(why: string): boolean {
    try {
      const next = this.loadPolicy();
      // The kernel first widens or narrows what it sends, then the new rules judge: an event
      // captured under the old settings is still judged, by the new rules.
      if (this.sensor && this.capture) {
        const capture = this.captureFor(next);
        pushCapture(this.sensor, capture);
        const reconfigure = capture.paths.all !== this.capture.paths.all;
        this.capture = capture;
        if (reconfigure) this.configureKernel();
      }
      this.policy = next;
      this.allowlists?.reapply();
      this.kernelProgram = compileKernelRules(next);
      this.pushKernelRules();
      this.log(`policy reloaded (${why}): ${next.size} rules in force`);
      return true;
    } catch (e) {
      if (e instanceof PolicyError) this.log(`policy not reloaded (${why}); keeping the last good one (${this.policy?.size ?? 0} rules):\n${e.message}`);
      else this.log(`policy not reloaded (${why}); keeping the last good one: ${(e as Error).message}`);
      return false;
    }
  }

  /** Reloads when a policy file or directory changes (editors write in several steps: debounced). */
  private watchPolicies(): void {
    for (const path of this.config.policies) {
      try {
        const w = watch(path, { persistent: false }, () => {
          if (this.reloadTimer) clearTimeout(this.reloadTimer);
          this.reloadTimer = setTimeout(() => this.reloadPolicy(`${path} changed`), 200);
          this.reloadTimer.unref();
        });
        w.on('error', () => undefined);
        this.policyWatchers.push(w);
      } catch (e) {
        this.log(`cannot watch ${path} for changes (${(e as Error).message}); SIGHUP reloads it`);
      }
    }
  }

  /** Hands the kernel side the container processes that were in the host's mount namespace before it started. */
  private rememberEscapedProcesses(hierarchy: CgroupHierarchy, hostMountNs: number): void {
    if (!this.sensor) return;
    for (const p of findEscapedProcesses(hierarchy, hostMountNs, hostNamespace('pid'))) {
      const same = () => statOf(p.pid)?.startTime === p.startTime;
      try {
        if (this.sensor.rememberTask(p.pid, p.key, false, same) === 'gone') continue;
        // Threads are tasks of their own; naming one needs PIDFD_THREAD (Linux 6.9).
        let missed = 0;
        for (const t of p.threads) {
          try {
            this.sensor.rememberTask(t, p.key, true, same);
          } catch {
            missed++;
          }
        }
        this.log(`process ${p.pid} (${commandOf(p.pid).slice(0, 80)}) left its container (known by its ${p.by}) before the agent started: watching it` +
          (missed > 0 ? `; ${missed} of its threads could not be named and stay unwatched` : ''));
      } catch (e) {
        this.log(`process ${p.pid} left its container before the agent started, but cannot be watched: ${(e as Error).message}`);
      }
    }
  }

  /** Streams a container's every syscall when the configuration names it. */
  private maybeStream(key: bigint, c: ContainerRef): void {
    const wanted = this.config.capture.stream.some((s) => s === c.name || (s.length >= 4 && c.id.startsWith(s)));
    if (wanted && this.sensor) {
      this.sensor.streamContainer(key, true);
      this.log(`streaming every system call of ${c.name || c.id.slice(0, 12)}`);
    }
  }

  /** Per-container syscall counts, by container, as JSON-ready data. */
  syscallCounts(): SyscallCountsReport {
    const containers: SyscallCountsReport['containers'] = [];
    for (const [key, perNr] of this.sensor?.syscallCounts() ?? new Map<bigint, Map<number, bigint>>()) {
      const identity = this.resolver?.lookup(key);
      if (identity?.type === 'host') continue;
      const syscalls: Record<string, number> = {};
      let total = 0;
      for (const [nr, n] of [...perNr].sort((a, b) => a[0] - b[0])) {
        syscalls[syscallName(nr)] = Number(n);
        total += Number(n);
      }
      const c = identity?.container;
      containers.push({ key: key.toString(), id: c?.id ?? '', name: c?.name ?? '', image: c?.image ?? '', total, syscalls });
    }
    return { time: new Date().toISOString(), host: this.config.host, containers };
  }

  /** Writes the counts to countsPath (atomically: readers never see half a file). */
  writeSyscallCounts(): string | undefined {
    const path = this.config.countsPath;
    if (!path) return undefined;
    writeFileAtomic(path, JSON.stringify(this.syscallCounts(), null, 2) + '\n');
    return path;
  }

  private writeMetrics(): void {
    if (!this.config.metricsPath || !this.sensor || !this.pipeline) return;
    const lostByCpu = new Map<string, bigint[]>();
    for (const [kind, perCpu] of this.sensor.lostByCpu()) lostByCpu.set(KIND_NAMES[kind] ?? `kind-${kind}`, perCpu);
    const shedByCpu = new Map<string, bigint[]>();
    for (const [kind, perCpu] of this.sensor.shedByCpu()) shedByCpu.set(KIND_NAMES[kind] ?? `kind-${kind}`, perCpu);
    try {
      writeFileAtomic(this.config.metricsPath, renderMetrics({
        ...this.pipeline.stats, decodeErrors: this.decodeErrors, lostByCpu, shedByCpu, ignoredCgroups: this.resolver?.ignoredCgroups,
        outputLost: this.config.outputs.map((spec, i) => ({ output: `${spec.format}:${spec.path}`, lines: this.outputs[i]?.lost ?? 0 })),
        insecure: this.policy?.stats.insecure, rules: this.policy?.size, ruleErrors: this.policy?.evalErrors(),
      }));
    } catch (e) {
      this.log(`cannot write metrics to ${this.config.metricsPath}: ${(e as Error).message}`);
    }
  }

  /** The entry an output writes where it had to drop lines (a full disk), once it can write again. */
  private outputLostEvent(path: string, lines: number, reason: string): VigilEvent {
    const e = (this.pipeline as EventPipeline).lostEvent('output', BigInt(lines));
    e.args['output'] = path;
    e.args['reason'] = reason;
    if (this.policy) e.verdict = this.policy.judge(e);
    return e;
  }

  /** Writes an entry for records the kernel could not queue (LossReporter: one per container, kind and reason). */
  /** One INSECURE entry when a control map no longer holds what the agent wrote (bpf maps changed behind its back). */
  private checkControlMaps(): void {
    const sensor = this.sensor;
    if (!sensor || sensor.detached || !this.pipeline) return;
    let changes;
    try {
      changes = sensor.verifyControlMaps();
    } catch (e) {
      if (!this.mapCheckFailed) this.log(`cannot re-read the BPF maps: ${(e as Error).message}`);
      this.mapCheckFailed = true;
      return;
    }
    this.mapCheckFailed = false;
    if (changes.length === 0) return;
    const maps = [...new Set(changes.map((c) => c.map))];
    this.log(`ALERT: BPF maps the agent alone writes were changed by someone else (${maps.join(', ')}: ${changes.length} entries); put back`);
    const e = this.pipeline.noticeEvent('agent', 'maps-changed', { maps, changes: changes.slice(0, 64).map((c) => `${c.map} ${c.change} ${c.key}`), count: changes.length, restored: true },
      { id: '', name: '', image: '', runtime: 'unknown' }, 0n);
    e.verdict = { level: 'INSECURE', rules: ['monitor maps changed'], action: 'alert', severity: 'critical' };
    for (const o of this.outputs) o.write(e);
  }

  private writeLost(l: LossEntry): void {
    if (!this.pipeline) return;
    const kind = KIND_NAMES[l.kind] ?? `kind-${l.kind}`;
    const e = this.pipeline.lostEvent(kind, l.count, { key: l.key, container: l.container, reason: l.reason });
    if (this.policy) e.verdict = this.policy.judge(e);
    for (const o of this.outputs) o.write(e);
    if (this.lossLogged++ < 20) {
      const whose = l.key === 0n ? 'of no known container' : `of ${l.container ? l.container.name || l.container.id.slice(0, 12) : `container key ${l.key}`}`;
      const why = l.reason === 'budget' ? 'its budget was spent while the ring buffer was under pressure' : 'the kernel ring buffer was full';
      this.log(`${why}: ${l.count} ${kind} records ${whose} lost`);
    }
  }

  /** Reopens the output files at their paths (SIGHUP after log rotation); nothing is lost or written twice. */
  async reopenOutputs(): Promise<void> {
    // Every output is tried; one that cannot be reopened keeps writing to its old file.
    const results = await Promise.allSettled(this.outputs.map((o) => o.reopen()));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (failed.length > 0) throw new Error(failed.join('; '));
  }

  /** Stops the kernel side, drains what it queued, writes out every pending event. */
  async stop(): Promise<AgentSummary> {
    for (const w of this.policyWatchers) w.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    if (this.lostTimer) clearInterval(this.lostTimer);
    if (this.mapCheckTimer) clearInterval(this.mapCheckTimer);
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // Detach first: the drain then reads everything the programs produced, nothing after.
    this.sensor?.detach();
    try {
      await this.drain?.stop();
      await this.pipeline?.flush();
      await this.control?.close();
      await this.responder?.settle();
      await this.allowlists?.stop();
      await this.loss?.report();
      if (this.sensor) {
        try {
          this.writeSyscallCounts();
        } catch (e) {
          this.log(`cannot write syscall counts to ${this.config.countsPath}: ${(e as Error).message}`);
        }
        this.writeMetrics();
      }
    } finally {
      this.resolver?.stop();
      this.sensor?.close();
      await Promise.all(this.outputs.map((o) => o.close()));
    }
    const lost = Number(this.loss?.total ?? 0n);
    const stats = this.pipeline?.stats ?? { records: 0, cgroups: 0, emitted: 0, droppedHost: 0, unresolved: 0, waiting: 0 };
    const outputLost = this.outputs.reduce((n, o) => n + o.lost, 0);
    return { ...stats, lost, decodeErrors: this.decodeErrors, outputLost };
  }
}

/** A report file's directory must exist (or be made) and be writable: checked at start, not at the first write. */
function checkWritableFile(path: string | undefined, flag: string): void {
  if (!path) return;
  const dir = dirname(path);
  try {
    ensureDirectory(dir);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'EACCES' ? `directory ${dir} is not writable` : (e as Error).message;
    throw new Error(`${flag} ${path}: ${reason}`);
  }
}

/**
 * Where an executable comes from, by the container's overlay layers: its writable layer
 * (written or changed since start), the image's layers, or neither (a volume, a tmpfs, a
 * bind mount). Unknown layers (another storage driver) count as the image's: no claim
 * is made that cannot be checked.
 */
function exeOrigin(facts: ContainerFacts | undefined, exe: string): { written: boolean; inImage: boolean } {
  if (!facts || facts.upperDir === '' || facts.lowerDirs.length === 0 || !exe.startsWith('/')) return { written: false, inImage: true };
  const upper = lstatSync(join(facts.upperDir, exe), { throwIfNoEntry: false });
  // An empty file in the writable layer is the mount point runc made for a file bind-mounted
  // over it (docker-init of --init, a -v FILE:PATH): the operator's file, not the container's.
  if (upper?.isFile() && upper.size === 0) return { written: false, inImage: true };
  const written = upper !== undefined;
  const inImage = !written && facts.lowerDirs.some((d) => existsSync(join(d, exe)));
  return { written, inImage };
}
