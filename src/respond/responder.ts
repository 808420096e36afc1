// Runs the countermeasure a verdict asks for, behind the safety rails, and says what it did.
//
// Order for every request: the container must not be protected; a rule's actions must be
// under the per-rule and per-container rate limits (an operator's request is not limited:
// a person asked for it); an action already taken on the same target is not taken twice
// (logged as limited); in dry run nothing is done and the outcome is `would`.
//
// A process kill is synchronous: it happens inside respond(), before the event that asked
// for it is written anywhere. Container actions go to the runtime and end later; the event
// then says `pending` and the response record written when the runtime answers says how
// it ended. Every request writes exactly one response record.
import type { ContainerRef, ProcessRef, ResponseInfo, VigilEvent } from '../events/index.js';
import type { RuleInfo } from '../policy/index.js';
import type { RespondConfig } from './config.js';
import type { ContainerState, DockerActions } from './docker-actions.js';
import { killProcess as realKill, type KillResult, type KillTarget } from './process-kill.js';
import { Protection, RateLimiter } from './rails.js';

export type ContainerAction = 'pause' | 'stop' | 'kill' | 'isolate';
const RESPONSE_ACTIONS = new Set(['kill', 'pause', 'stop', 'isolate']);
/** Restart policies under which the runtime may start a stopped or killed container again. */
const RESTARTING = new Set(['always', 'unless-stopped', 'on-failure']);

/** A response before its outcome is known. */
type ResponseBase = Pick<ResponseInfo, 'action' | 'target' | 'layer' | 'by'> & { rule?: string };

export interface ResponseRecordAbout {
  container: ContainerRef;
  process: ProcessRef | undefined;
  /** seq of the event that asked for the action. */
  trigger: number | undefined;
}

export interface ResponderOptions {
  config: RespondConfig;
  docker: DockerActions;
  /** Writes a `response` record (the agent numbers it and sends it to every output). */
  record: (info: ResponseInfo, about: ResponseRecordAbout) => void;
  /** The container's labels as the resolver knows them (undefined: not known yet). */
  labels: (containerId: string) => Readonly<Record<string, string>> | undefined;
  /** The rules in force, to name the rule that asked for an action. */
  rules: () => RuleInfo[];
  log: (message: string) => void;
  ownContainerId: string | undefined;
  now?: () => number;
  kill?: (t: KillTarget) => KillResult;
}

export class Responder {
  private readonly perRule: RateLimiter;
  private readonly perContainer: RateLimiter;
  private readonly protection: Protection;
  /** Targets acted on (container+action, or pid+nsPid+pidNs) and when: the same action is not repeated within the container window. */
  private readonly taken = new Map<string, number>();
  private readonly now: () => number;
  private readonly kill: (t: KillTarget) => KillResult;
  private readonly inFlight = new Set<Promise<void>>();
  readonly stats = { requested: 0, done: 0, would: 0, limited: 0, protected: 0, failed: 0 };

  constructor(private readonly opts: ResponderOptions) {
    this.perRule = new RateLimiter(opts.config.rateLimit.perRule);
    this.perContainer = new RateLimiter(opts.config.rateLimit.perContainer);
    this.protection = new Protection(opts.config.protect, opts.ownContainerId);
    this.now = opts.now ?? Date.now;
    this.kill = opts.kill ?? realKill;
  }

  get dryRun(): boolean {
    return this.opts.config.dryRun;
  }

  /**
   * Called with a judged event before it is written. Sets e.response when the verdict asks
   * for an action and returns what to call once the event is written (its response record).
   */
  respond(e: VigilEvent): (() => void) | undefined {
    const action = e.verdict.action;
    // The in-kernel kill (bpf/enforce.bpf.c) already sent SIGKILL at the exec or the call's
    // sys_enter, and the pipeline marked the event with the kernel's rule. Nothing more is
    // done here, whatever the verdict (the kernel's clauses imply the rule, so it is a kill
    // unless the policy changed since); the record says who acted. Not rate limited: the
    // kernel kills every match of a rule it decides.
    if (e.response?.layer === 'kernel') {
      this.stats.requested++;
      const about: ResponseRecordAbout = { container: e.container, process: e.process, trigger: e.seq };
      const rule = e.response.rule ?? actingRule(e.verdict.rules, 'kill', this.opts.rules());
      const info: ResponseInfo = { ...e.response, rule, by: 'policy' };
      e.response = info;
      this.count(info);
      return () => this.opts.record(info, about);
    }
    if (!RESPONSE_ACTIONS.has(action)) return undefined;
    this.stats.requested++;
    const rule = actingRule(e.verdict.rules, action, this.opts.rules());
    const about: ResponseRecordAbout = { container: e.container, process: e.process, trigger: e.seq };
    const target: ResponseInfo['target'] = action === 'kill' ? 'process' : 'container';
    const layer: ResponseInfo['layer'] = action === 'kill' ? 'user-space' : 'runtime';
    const base = { action: action as ResponseInfo['action'], target, layer, by: 'policy' as const, rule };
    const finish = (info: ResponseInfo): (() => void) => {
      e.response = info;
      this.count(info);
      return () => this.opts.record(info, about);
    };
    const c = e.container;
    if (c.id === '') return finish({ ...base, outcome: 'failed', error: 'the event has no known container: nothing is acted on without one' });
    // The agent's own entries (a call made before the allow-list was loaded) name no process.
    if (action === 'kill' && e.process.pid === 0) return finish({ ...base, outcome: 'failed', error: 'the event names no process to kill: the kernel could not report the call when it was made (before the container\'s allow-list was loaded, or with its ring buffer full)' });
    // Labels the resolver does not know yet (a container's first milliseconds): the action
    // then checks them with the runtime's own answer before it acts (a kill is delayed by
    // that inspect; the pidfd check still keeps it off a reused pid).
    const labels = this.opts.labels(c.id);
    const labelsPending = labels === undefined && this.opts.config.protect.labels.length > 0;
    const protectedBy = this.protection.reason(c, labels ?? {});
    if (protectedBy) return finish({ ...base, outcome: 'protected', reason: protectedBy });
    const now = this.now();
    const key = action === 'kill' ? `kill\0${e.process.pid}\0${e.process.nsPid}\0${e.namespaces.pid}` : `${action}\0${c.id}`;
    const before = this.taken.get(key);
    if (before !== undefined && now - before < this.opts.config.rateLimit.perContainer.seconds * 1000) {
      return finish({ ...base, outcome: 'limited', reason: action === 'kill' ? 'this process was already killed' : `already ${past(action)} by an earlier event` });
    }
    if (!this.perRule.take(rule, now)) {
      const l = this.opts.config.rateLimit.perRule;
      return finish({ ...base, outcome: 'limited', reason: `rule '${rule}' took ${l.count} actions in the last ${l.seconds} s (rateLimit.perRule)` });
    }
    // Kills and container actions are counted apart: decoy processes that use up a container's
    // kills must not also use up the pause or stop a rule asks for.
    if (!this.perContainer.take(action === 'kill' ? `${c.id}\0kills` : c.id, now)) {
      this.perRule.untake(rule);
      const l = this.opts.config.rateLimit.perContainer;
      return finish({ ...base, outcome: 'limited', reason: `container ${c.name || c.id.slice(0, 12)} had ${l.count} ${action === 'kill' ? 'process kills' : 'container actions'} in the last ${l.seconds} s (rateLimit.perContainer)` });
    }
    this.remember(key, now);
    if (this.dryRun) return finish({ ...base, outcome: 'would', reason: `would ${action === 'kill' ? `kill process ${e.process.pid}` : `${action} the container`} (dry run)` });
    if (action === 'kill' && !labelsPending) return finish(this.killNow(e, base));
    if (action === 'kill') {
      e.response = { ...base, outcome: 'pending', reason: 'the container\'s labels are checked with the runtime first' };
      return () => {
        this.track(this.opts.docker.inspect(c.id).then(
          (st) => {
            const why = this.protection.reason(st, st.labels);
            return why ? { ...base, outcome: 'protected' as const, reason: why } : this.killNow(e, base);
          },
          (err: unknown) => ({ ...base, outcome: 'failed' as const, error: `cannot read the container's labels to check protect.labels: ${(err as Error).message}` }),
        ).then((info) => {
          this.count(info);
          this.opts.record(info, about);
        }));
      };
    }
    // A container action: the event says pending, the record comes when the runtime answers.
    e.response = { ...base, outcome: 'pending' };
    return () => {
      this.track(this.containerAction(action as ContainerAction, c.id, 'policy').then((info) => {
        const full = { ...info, rule };
        this.count(full);
        this.opts.record(full, about);
      }));
    };
  }

  private killNow(e: VigilEvent, base: ResponseBase): ResponseInfo {
    const t0 = process.hrtime.bigint();
    const r = this.kill({ pid: e.process.pid, nsPid: e.process.nsPid, pidNs: e.namespaces.pid, timeNs: BigInt(e.time) });
    const tookUs = Number((process.hrtime.bigint() - t0) / 1000n);
    // From the system call (the kernel's timestamp) to the signal, as the wall clock sees it (ms precision).
    const afterEventMs = Number(BigInt(Date.now()) * 1_000_000n - BigInt(e.time)) / 1e6;
    if (r.outcome === 'done') return { ...base, outcome: 'done', pid: e.process.pid, ...(r.descendants > 0 ? { descendants: r.descendants } : {}), killUs: tookUs, afterEventMs };
    if (r.outcome === 'gone') return { ...base, outcome: 'failed', pid: e.process.pid, error: r.error };
    if (r.outcome === 'reused') return { ...base, outcome: 'failed', pid: e.process.pid, error: `not killed: ${r.error}` };
    return { ...base, outcome: 'failed', pid: e.process.pid, error: r.error };
  }

  /** An operator's request (control socket): protected containers and dry run hold; rate limits do not. */
  async request(action: ContainerAction, container: string, stopTimeoutSeconds?: number): Promise<ResponseInfo> {
    this.stats.requested++;
    const about: ResponseRecordAbout = { container: { id: '', name: container, image: '', runtime: 'docker' }, process: undefined, trigger: undefined };
    const info = await this.containerAction(action, container, 'operator', stopTimeoutSeconds, (s) => {
      about.container = { id: s.id, name: s.name, image: '', runtime: 'docker' };
    });
    this.count(info);
    this.opts.record(info, about);
    return info;
  }

  /** One container action through the runtime, with the restart policy handled first for stop and kill. */
  private async containerAction(action: ContainerAction, idOrName: string, by: 'policy' | 'operator', timeout = this.opts.config.stopTimeoutSeconds, onState?: (s: ContainerState) => void): Promise<ResponseInfo> {
    const base: ResponseBase = { action, target: 'container', layer: 'runtime', by };
    const t0 = process.hrtime.bigint();
    const ms = () => Math.round(Number(process.hrtime.bigint() - t0) / 1e4) / 100;
    let state: ContainerState;
    try {
      state = await this.opts.docker.inspect(idOrName);
    } catch (e) {
      return { ...base, outcome: 'failed', error: (e as Error).message };
    }
    onState?.(state);
    const named = { ...base, container: state.name || state.id.slice(0, 12) };
    // Labels from the runtime itself: the resolver's may not have been known when the event was judged.
    const protectedBy = this.protection.reason(state, state.labels);
    if (protectedBy) return { ...named, outcome: 'protected', reason: protectedBy };
    if (this.dryRun) return { ...named, outcome: 'would', reason: `would ${action} the container (dry run)` };
    const d = this.opts.docker;
    try {
      switch (action) {
        case 'pause':
          if (state.paused) return { ...named, outcome: 'done', reason: 'it was already paused', ms: ms() };
          if (!state.running) return { ...named, outcome: 'failed', error: 'the container is not running' };
          await d.pause(state.id);
          return { ...named, outcome: 'done', ms: ms() };
        case 'stop':
        case 'kill': {
          // The restart policy goes first: with always/unless-stopped/on-failure the runtime may
          // start the container again (a kill, a daemon restart), which would undo the action
          // without a word. It is set to "no" and the record says what it was.
          let restart: Record<string, string> = {};
          if (RESTARTING.has(state.restartPolicy)) {
            await d.noRestart(state.id);
            restart = { restartPolicyWas: state.restartPolicy, restartPolicy: 'no' };
          }
          if (!state.running) return { ...named, ...restart, outcome: 'done', reason: 'it was not running', ms: ms() };
          if (action === 'stop') await d.stop(state.id, timeout);
          else await d.kill(state.id);
          return { ...named, ...restart, outcome: 'done', ...(action === 'stop' ? { timeoutSeconds: timeout } : {}), ms: ms() };
        }
        case 'isolate': {
          if (state.networkMode === 'host' || state.networkMode.startsWith('container:')) {
            return { ...named, outcome: 'failed', error: `network mode '${state.networkMode}' shares another network namespace; there is no network of its own to disconnect` };
          }
          const failed: string[] = [];
          for (const n of state.networks) {
            try {
              await d.disconnect(state.id, n);
            } catch (e) {
              failed.push(`${n}: ${(e as Error).message}`);
            }
          }
          if (failed.length > 0) return { ...named, outcome: 'failed', networks: state.networks, error: failed.join('; ') };
          return { ...named, outcome: 'done', networks: state.networks, ...(state.networks.length === 0 ? { reason: 'it had no network' } : {}), ms: ms() };
        }
      }
    } catch (e) {
      return { ...named, outcome: 'failed', error: (e as Error).message };
    }
  }

  private remember(key: string, now: number): void {
    if (this.taken.size > 10_000) {
      const windowMs = this.opts.config.rateLimit.perContainer.seconds * 1000;
      for (const [k, t] of this.taken) if (now - t >= windowMs) this.taken.delete(k);
      if (this.taken.size > 10_000) this.taken.clear();
    }
    this.taken.set(key, now);
  }

  private count(info: ResponseInfo): void {
    if (info.outcome === 'pending') return;
    this.stats[info.outcome]++;
  }

  private track(p: Promise<void>): void {
    const t = p.catch((e: unknown) => this.opts.log(`response failed: ${(e as Error).message}`)).finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
  }

  /** Resolves when every container action sent so far has ended and been recorded. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

function past(action: string): string {
  return action === 'stop' ? 'stopped' : action === 'pause' ? 'paused' : action === 'isolate' ? 'isolated' : `${action}ed`;
}

/**
 * The rule that asked for the action: the first matched rule whose action (as the rule
 * set holds it) is the verdict's; one an override changed for some containers; else the first.
 */
export function actingRule(matched: readonly string[], action: string, rules: readonly RuleInfo[]): string {
  const byName = new Map(rules.map((r) => [r.name, r]));
  return matched.find((n) => byName.get(n)?.action === action)
    ?? matched.find((n) => (byName.get(n)?.overriddenBy.length ?? 0) > 0)
    ?? matched[0] ?? '';
}
