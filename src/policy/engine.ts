// The rule engine: the policy documents of a load merged in order (lists and macros
// extended or replaced by later files, rules unique by name, overrides applied per
// container), every condition compiled once, rules indexed by event kind and, where a
// condition pins it, by system call. judge() gives every event its verdict.
import { allowlistBits, type ContainerRef, type EventKind, type Verdict, type VigilEvent } from '../events/index.js';
import { activationOf, containerView, type ContainerFacts } from './activation.js';
import { ConditionCompiler, EVENT_VARIABLES, type CelNode, type CompiledCondition } from './cel.js';
import { newRound } from './compile.js';
import { ACTIONS, EVENT_KINDS, SEVERITIES, type PolicyDoc, type RuleAction, type RuleDoc, type Selector, type Severity } from './document.js';
import { PolicyError, type PolicyProblem, type SourcePos } from './errors.js';
import { globMatch } from './glob.js';

export interface RuleInfo {
  name: string;
  policy: string;
  file: string;
  line: number;
  description: string;
  kinds: EventKind[] | undefined;
  severity: Severity;
  action: RuleAction;
  tags: string[];
  enabled: boolean;
  /** Overrides that change it, as FILE:LINE. */
  overriddenBy: string[];
  /** System calls the condition pins (syscall == / in), undefined when it does not. */
  syscalls: string[] | undefined;
}

interface Override {
  selector: Selector;
  everyContainer: boolean;
  enabled: boolean | undefined;
  action: RuleAction | undefined;
  severity: Severity | undefined;
  exceptions: CompiledCondition[];
  where: string;
}

interface Rule {
  doc: RuleDoc;
  policy: PolicyDoc;
  condition: CompiledCondition;
  exceptions: CompiledCondition[];
  overrides: Override[];
  syscalls: ReadonlySet<string> | undefined;
  once: { value(ctx: Record<string, unknown>): string } | undefined;
  info: RuleInfo;
}

/** State of the stateful rule options (once, threshold), bounded. */
const STATE_LIMIT = 100_000;

/** A rule as it applies to one container, its overrides folded in. */
interface Effective {
  rule: Rule;
  action: RuleAction;
  severity: Severity;
  exceptions: CompiledCondition[];
}

const NORMAL: Verdict = Object.freeze({ level: 'NORMAL', rules: Object.freeze([]) as unknown as string[], action: 'none' }) as Verdict;
const ACTION_RANK: Record<string, number> = Object.fromEntries(ACTIONS.map((a, i) => [a, i]));
const SEVERITY_RANK: Record<string, number> = Object.fromEntries(SEVERITIES.map((s, i) => [s, i]));
const KIND_INDEX: Record<string, number> = Object.fromEntries(EVENT_KINDS.map((k, i) => [k, i]));

export function selectorMatches(s: Selector, c: ContainerRef, facts: ContainerFacts | undefined): boolean {
  if (s.image.length > 0 && !s.image.some((g) => globMatch(g, c.image))) return false;
  if (s.name.length > 0 && !s.name.some((g) => globMatch(g, c.name))) return false;
  for (const [k, g] of Object.entries(s.labels)) {
    const v = facts?.labels[k];
    if (v === undefined || !globMatch(g, v)) return false;
  }
  return true;
}

/** The system calls a condition's top-level conjuncts pin `syscall` to, if any. */
export function pinnedSyscalls(ast: CelNode, lists: ReadonlyMap<string, ReadonlyArray<string | number>>): Set<string> | undefined {
  const isSyscallId = (n: unknown) => (n as CelNode | undefined)?.op === 'id' && (n as CelNode).args === 'syscall';
  const literal = (n: unknown): string | undefined => ((n as CelNode).op === 'value' && typeof (n as CelNode).args === 'string' ? ((n as CelNode).args as string) : undefined);
  const visit = (n: CelNode): Set<string> | undefined => {
    if (n.op === '&&') {
      const [a, b] = n.args as CelNode[];
      const left = visit(a as CelNode);
      const right = visit(b as CelNode);
      if (left && right) return new Set([...left].filter((x) => right.has(x)));
      return left ?? right;
    }
    if (n.op === '||') {
      const [a, b] = n.args as CelNode[];
      const left = visit(a as CelNode);
      const right = visit(b as CelNode);
      return left && right ? new Set([...left, ...right]) : undefined;
    }
    const [a, b] = (Array.isArray(n.args) ? n.args : []) as CelNode[];
    if (n.op === '==' && a && b) {
      if (isSyscallId(a) && literal(b) !== undefined) return new Set([literal(b) as string]);
      if (isSyscallId(b) && literal(a) !== undefined) return new Set([literal(a) as string]);
    }
    if (n.op === 'in' && a && b && isSyscallId(a)) {
      if (b.op === 'list') {
        const items = (b.args as CelNode[]).map(literal);
        if (items.every((x) => x !== undefined)) return new Set(items as string[]);
      }
      if (b.op === 'id' && typeof b.args === 'string') {
        const items = lists.get(b.args);
        if (items && items.every((x) => typeof x === 'string')) return new Set(items as string[]);
      }
    }
    return undefined;
  };
  return visit(ast);
}

function posText(p: SourcePos): string {
  return `${p.file}:${p.line}`;
}

export interface PolicySetStats {
  judged: number;
  insecure: number;
  /** Evaluation errors per rule (a condition reading a field the event lacks counts as no match). */
  evalErrors: Record<string, number>;
}

export class PolicySet {
  private readonly rules: Rule[];
  private readonly byName = new Map<string, Rule>();
  private readonly perContainer = new WeakMap<ContainerRef, Effective[][]>();
  /** once: keys already alerted, per rule. threshold: match times (ms) per rule and process. */
  private readonly onceSeen = new Map<Rule, Set<string>>();
  private readonly windows = new Map<Rule, Map<string, number[]>>();
  private readonly compiler: ConditionCompiler;
  readonly lists: ReadonlyMap<string, ReadonlyArray<string | number>>;
  readonly stats = { judged: 0, insecure: 0 };

  private constructor(rules: Rule[], compiler: ConditionCompiler, lists: ReadonlyMap<string, ReadonlyArray<string | number>>, private readonly facts: (c: ContainerRef) => ContainerFacts | undefined, private readonly docs: readonly PolicyDoc[]) {
    this.rules = rules;
    for (const r of rules) this.byName.set(r.doc.name, r);
    this.compiler = compiler;
    this.lists = lists;
  }

  /**
   * Merges policy documents in the order given (defaults first). Throws a PolicyError
   * listing every problem; nothing of a set with problems is used.
   */
  static build(docs: readonly PolicyDoc[], facts: (c: ContainerRef) => ContainerFacts | undefined = () => undefined): PolicySet {
    const problems: PolicyProblem[] = [];
    const problem = (pos: SourcePos, message: string) => problems.push({ ...pos, message });
    const lists = new Map<string, Array<string | number>>();
    for (const d of docs) {
      for (const l of d.lists) {
        if (EVENT_VARIABLES.includes(l.name)) {
          problem(l.pos, `list ${l.name}: the name is an event field; choose another`);
          continue;
        }
        const prev = lists.get(l.name);
        if (l.append) {
          if (!prev) problem(l.pos, `list ${l.name}: append to a list no earlier policy defines`);
          else if (prev.length > 0 && l.items.length > 0 && typeof prev[0] !== typeof l.items[0]) problem(l.pos, `list ${l.name}: appended items must be ${typeof prev[0]}s like the list's`);
          else lists.set(l.name, [...prev, ...l.items]);
        } else {
          lists.set(l.name, [...l.items]);
        }
      }
    }
    const compiler = new ConditionCompiler(lists);
    // Macros: the last definition of a name wins (later files override), in file order,
    // so a macro may use macros defined before it.
    const macroNames = new Set<string>();
    for (const d of docs) {
      for (const m of d.macros) {
        if (EVENT_VARIABLES.includes(m.name) || lists.has(m.name)) {
          problem(m.pos, `macro ${m.name}: the name is already an event field or a list`);
          continue;
        }
        const p = compiler.defineMacro(m.name, m.condition);
        if (p) problem(p.pos, p.message);
        macroNames.add(m.name);
      }
    }
    const rules: Rule[] = [];
    const seen = new Map<string, SourcePos>();
    for (const d of docs) {
      for (const doc of d.rules) {
        const before = seen.get(doc.name);
        if (before) {
          problem(doc.pos, `rule '${doc.name}' is already defined at ${posText(before)}; change it with an override (spec.overrides: - rule: ${doc.name}) instead of redefining it`);
          continue;
        }
        seen.set(doc.name, doc.pos);
        const condition = compiler.compile(doc.condition);
        if ('message' in condition) {
          problem(condition.pos, `rule '${doc.name}': ${condition.message}`);
          continue;
        }
        const exceptions: CompiledCondition[] = [];
        for (const ex of doc.exceptions) {
          const c = compiler.compile(ex.condition);
          if ('message' in c) problem(c.pos, `rule '${doc.name}', exception ${ex.name}: ${c.message}`);
          else exceptions.push(c);
        }
        let once: Rule['once'];
        if (doc.once) {
          const v = compiler.compileValue(doc.once);
          if ('message' in v) problem(v.pos, `rule '${doc.name}', once: ${v.message}`);
          else once = v;
        }
        const pinned = pinnedSyscalls(condition.ast, lists);
        const info: RuleInfo = {
          name: doc.name, policy: d.name, file: d.file, line: doc.pos.line, description: doc.description, kinds: doc.kinds,
          severity: doc.severity, action: doc.action, tags: doc.tags, enabled: doc.enabled, overriddenBy: [], syscalls: pinned ? [...pinned].sort() : undefined,
        };
        rules.push({ doc, policy: d, condition, exceptions, overrides: [], syscalls: pinned, once, info });
      }
    }
    const byName = new Map(rules.map((r) => [r.doc.name, r]));
    for (const d of docs) {
      for (const o of d.overrides) {
        const rule = byName.get(o.rule);
        if (!rule) {
          if (!seen.has(o.rule)) problem(o.pos, `override of unknown rule '${o.rule}'${closest(o.rule, [...seen.keys()])}`);
          continue;
        }
        const exceptions: CompiledCondition[] = [];
        for (const ex of o.exceptions) {
          const c = compiler.compile(ex.condition);
          if ('message' in c) problem(c.pos, `override of '${o.rule}', exception ${ex.name}: ${c.message}`);
          else exceptions.push(c);
        }
        rule.overrides.push({ selector: d.selector, everyContainer: d.everyContainer, enabled: o.enabled, action: o.action, severity: o.severity, exceptions, where: posText(o.pos) });
        rule.info.overriddenBy.push(posText(o.pos));
        if (d.everyContainer) {
          if (o.enabled !== undefined) rule.info.enabled = o.enabled;
          if (o.action) rule.info.action = o.action;
          if (o.severity) rule.info.severity = o.severity;
        }
      }
    }
    for (const d of docs) {
      for (const a of d.allowlistAdd) {
        if (!allowlistBits(a.name)) problem(a.pos, `spec.allowlist.add: '${a.name}' is no x86-64 system call (write i386:NAME for a 32-bit one)`);
      }
    }
    if (problems.length > 0) throw new PolicyError(problems);
    return new PolicySet(rules, compiler, lists, facts, docs);
  }

  /** The rules in force, in load order. */
  list(): RuleInfo[] {
    return this.rules.map((r) => ({ ...r.info, overriddenBy: [...r.info.overriddenBy] }));
  }

  get size(): number {
    return this.rules.length;
  }

  /** Kinds some enabled rule (for some container) looks at; undefined entries mean every kind. */
  kindsUsed(): Set<EventKind> {
    const out = new Set<EventKind>();
    for (const r of this.rules) {
      const on = r.doc.enabled || r.overrides.some((o) => o.enabled === true);
      if (!on) continue;
      for (const k of r.doc.kinds ?? EVENT_KINDS) out.add(k);
    }
    return out;
  }

  /** Rules, with their compiled conditions, for pushdown analysis. */
  compiledRules(): Array<{ info: RuleInfo; ast: CelNode; enabledSomewhere: boolean }> {
    return this.rules.map((r) => ({ info: r.info, ast: r.condition.ast, enabledSomewhere: r.doc.enabled || r.overrides.some((o) => o.enabled === true) }));
  }

  /**
   * What the in-kernel kill needs beyond the condition (kernel-rules.ts): whether a rule can
   * be `kill` anywhere, has exceptions or state (once, threshold) the kernel cannot judge, and
   * is scoped (a selector on its policy or on an override), so applies per container.
   */
  kernelView(): Array<{ info: RuleInfo; ast: CelNode; killSomewhere: boolean; exceptions: number; stateful: boolean; scoped: boolean }> {
    return this.rules.map((r) => ({
      info: r.info, ast: r.condition.ast,
      killSomewhere: (r.doc.enabled || r.overrides.some((o) => o.enabled === true)) && (r.doc.action === 'kill' || r.overrides.some((o) => o.action === 'kill')),
      exceptions: r.exceptions.length, stateful: r.doc.threshold !== undefined || r.once !== undefined,
      scoped: !r.policy.everyContainer || r.overrides.some((o) => !o.everyContainer),
    }));
  }

  /** Rule name -> its action for one container, and how many exceptions apply there (enabled rules only). */
  actionsFor(c: ContainerRef): Map<string, { action: RuleAction; exceptions: number }> {
    const out = new Map<string, { action: RuleAction; exceptions: number }>();
    for (const perKind of this.effectiveFor(c)) for (const eff of perKind) out.set(eff.rule.doc.name, { action: eff.action, exceptions: eff.exceptions.length });
    return out;
  }

  /** Every compiled condition: each rule's, its exceptions' and its overrides' (for tests and benchmarks). */
  conditions(): Array<{ rule: string; what: string; condition: CompiledCondition }> {
    return this.rules.flatMap((r) => [
      { rule: r.doc.name, what: 'condition', condition: r.condition },
      ...r.exceptions.map((x, i) => ({ rule: r.doc.name, what: `exception ${i + 1}`, condition: x })),
      ...r.overrides.flatMap((o) => o.exceptions.map((x, i) => ({ rule: r.doc.name, what: `exception ${i + 1} of override at ${o.where}`, condition: x }))),
    ]);
  }

  evalErrors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rules) {
      let n = this.compiler.errors.get(r.condition) ?? 0;
      for (const e of r.exceptions) n += this.compiler.errors.get(e) ?? 0;
      if (n > 0) out[r.doc.name] = n;
    }
    return out;
  }

  /** The rules that apply to a container, per event kind, its overrides folded in (cached per container object). */
  private effectiveFor(c: ContainerRef): Effective[][] {
    let table = this.perContainer.get(c);
    if (table) return table;
    const facts = this.facts(c);
    table = EVENT_KINDS.map(() => []);
    for (const rule of this.rules) {
      if (!rule.policy.everyContainer && !selectorMatches(rule.policy.selector, c, facts)) continue;
      let enabled = rule.doc.enabled;
      let action = rule.doc.action;
      let severity = rule.doc.severity;
      const exceptions = [...rule.exceptions];
      for (const o of rule.overrides) {
        if (!o.everyContainer && !selectorMatches(o.selector, c, facts)) continue;
        if (o.enabled !== undefined) enabled = o.enabled;
        if (o.action) action = o.action;
        if (o.severity) severity = o.severity;
        exceptions.push(...o.exceptions);
      }
      if (!enabled) continue;
      const eff: Effective = { rule, action, severity, exceptions };
      for (const k of rule.doc.kinds ?? EVENT_KINDS) table[KIND_INDEX[k] as number]!.push(eff);
    }
    // Frozen refs are shared by every event of the container; others are built per event.
    if (Object.isFrozen(c)) this.perContainer.set(c, table);
    return table;
  }

  /** The verdict of one event: every matching rule, the strongest action, INSECURE unless all matches are `log`. */
  judge(e: VigilEvent): Verdict {
    this.stats.judged++;
    const candidates = this.effectiveFor(e.container)[KIND_INDEX[e.kind] ?? -1];
    if (!candidates || candidates.length === 0) return NORMAL;
    // Compiled conditions read the event itself; the BigInt activation is built only for
    // an interpreted one (or a `once` value), at most once per event.
    // One round for the event: conditions share what their common macros computed.
    const round = newRound();
    let view: Record<string, unknown> | undefined;
    let activation: Record<string, unknown> | undefined;
    const holds = (x: CompiledCondition): boolean => {
      view ??= containerView(e.container, this.facts(e.container));
      return x.compiled ? x.evaluateEvent(e, view, round) : x.evaluate((activation ??= activationOf(e, view)));
    };
    let matched: Effective[] | undefined;
    for (const eff of candidates) {
      if (eff.rule.syscalls && !eff.rule.syscalls.has(e.syscall)) continue;
      if (!holds(eff.rule.condition)) continue;
      if (eff.exceptions.length > 0 && eff.exceptions.some(holds)) continue;
      if (eff.rule.doc.threshold && !this.overThreshold(eff.rule, e)) continue;
      if (eff.rule.once) {
        view ??= containerView(e.container, this.facts(e.container));
        if (!this.firstTime(eff.rule, e, eff.rule.once.value((activation ??= activationOf(e, view))))) continue;
      }
      (matched ??= []).push(eff);
    }
    if (!matched) return NORMAL;
    let action: RuleAction = 'log';
    let severity: Severity = 'info';
    let insecure = false;
    for (const m of matched) {
      if ((ACTION_RANK[m.action] as number) > (ACTION_RANK[action] as number)) action = m.action;
      if (m.action !== 'log') {
        insecure = true;
        if ((SEVERITY_RANK[m.severity] as number) > (SEVERITY_RANK[severity] as number)) severity = m.severity;
      }
    }
    if (insecure) this.stats.insecure++;
    const verdict: Verdict = { level: insecure ? 'INSECURE' : 'NORMAL', rules: matched.map((m) => m.rule.doc.name), action };
    if (insecure) verdict.severity = severity;
    return verdict;
  }

  /** threshold: the condition held count times within the window for this process; the window starts again after. */
  private overThreshold(rule: Rule, e: VigilEvent): boolean {
    const t = rule.doc.threshold as { count: number; seconds: number; per: 'process' | 'container' };
    let byKey = this.windows.get(rule);
    if (!byKey) this.windows.set(rule, (byKey = new Map()));
    if (byKey.size > STATE_LIMIT) byKey.clear();
    const key = t.per === 'container' ? e.container.id : `${e.container.id}\0${e.process.pid}`;
    const now = Number(e.time.length > 6 ? e.time.slice(0, -6) : '0');
    const times = (byKey.get(key) ?? []).filter((x) => now - x < t.seconds * 1000);
    times.push(now);
    if (times.length >= t.count) {
      byKey.delete(key);
      return true;
    }
    byKey.set(key, times);
    return false;
  }

  /** once: the first match per container and key value; later ones are left out. */
  private firstTime(rule: Rule, e: VigilEvent, value: string): boolean {
    let seen = this.onceSeen.get(rule);
    if (!seen) this.onceSeen.set(rule, (seen = new Set()));
    if (seen.size > STATE_LIMIT) seen.clear();
    const key = `${e.container.id}\0${value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }

  /**
   * A rule as it applies to one container, its overrides folded in: undefined when the rule
   * is not defined or is off for that container.
   */
  effectiveRule(name: string, c: ContainerRef): { action: RuleAction; severity: Severity; exceptions: number } | undefined {
    const rule = this.byName.get(name);
    if (!rule) return undefined;
    for (const kind of this.effectiveFor(c)) {
      const eff = kind.find((x) => x.rule === rule);
      if (eff) return { action: eff.action, severity: eff.severity, exceptions: eff.exceptions.length };
    }
    return undefined;
  }

  /** System calls the policies add to a container's allow-list (spec.allowlist.add of every policy whose selector matches). */
  allowlistAdditions(c: ContainerRef): string[] {
    const facts = this.facts(c);
    const out = new Set<string>();
    for (const d of this.docs) if (d.everyContainer || selectorMatches(d.selector, c, facts)) for (const a of d.allowlistAdd) out.add(a.name);
    return [...out].sort();
  }

  /** Is a rule (by name) defined in this set? */
  has(name: string): boolean {
    return this.byName.has(name);
  }
}

function closest(name: string, names: string[]): string {
  const lower = name.toLowerCase();
  const near = names.find((n) => n.toLowerCase() === lower || n.toLowerCase().includes(lower) || lower.includes(n.toLowerCase()));
  return near ? `; did you mean '${near}'?` : '';
}
