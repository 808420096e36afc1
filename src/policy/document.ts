// Policy documents: YAML (apiVersion vigil.dev/v1, kind Policy) read into typed
// values that remember where each part was written, so every later error (a CEL type
// error, an unknown list, a duplicate rule) can name FILE:LINE:COL.
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import type { EventKind } from '../events/index.js';
import type { PolicyProblem, SourcePos } from './errors.js';

export const API_VERSION = 'vigil.dev/v1';
// In rank order: a verdict takes the strongest action of the rules that matched.
export const ACTIONS = ['log', 'alert', 'isolate', 'pause', 'stop', 'kill'] as const;
export type RuleAction = (typeof ACTIONS)[number];
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const EVENT_KINDS: readonly EventKind[] = ['exec', 'fork', 'exit', 'file', 'process', 'network', 'capability', 'tcp', 'syscall', 'lost', 'io_uring'];

/** A CEL expression as written, with the way back from an offset in it to the file. */
export interface CelSource {
  text: string;
  pos: SourcePos;
  at(offset: number): SourcePos;
}

export interface Selector {
  /** Globs on the image as the container was started with it (`*` any run, `?` one character). */
  image: string[];
  name: string[];
  /** Label key → glob of its value; every one must match. */
  labels: Record<string, string>;
}

export interface ExceptionDoc {
  name: string;
  condition: CelSource;
}

export interface RuleDoc {
  name: string;
  description: string;
  kinds: EventKind[] | undefined; // undefined: every kind
  condition: CelSource;
  severity: Severity;
  tags: string[];
  action: RuleAction;
  exceptions: ExceptionDoc[];
  enabled: boolean;
  /** Alert once per container and value of this expression (e.g. args.capability); later matches are left out. */
  once: CelSource | undefined;
  /** Match only when the condition held this many times within the window, per process. */
  threshold: { count: number; seconds: number; per: 'process' | 'container' } | undefined;
  /** Where the rule's name is written. */
  pos: SourcePos;
}

/** Changes a rule defined elsewhere (a default rule) without copying it, for the policy's selector. */
export interface OverrideDoc {
  rule: string;
  enabled: boolean | undefined;
  action: RuleAction | undefined;
  severity: Severity | undefined;
  exceptions: ExceptionDoc[];
  /** Where the name of the rule it changes is written. */
  pos: SourcePos;
}

export interface ListDoc {
  name: string;
  items: Array<string | number>;
  /** Extends a list defined by an earlier file instead of replacing it. */
  append: boolean;
  pos: SourcePos;
}

export interface MacroDoc {
  name: string;
  condition: CelSource;
  pos: SourcePos;
}

export interface PolicyDoc {
  name: string;
  file: string;
  pos: SourcePos;
  selector: Selector;
  /** True when the selector is empty: the policy applies to every container. */
  everyContainer: boolean;
  rules: RuleDoc[];
  overrides: OverrideDoc[];
  lists: ListDoc[];
  macros: MacroDoc[];
  /** For the selector's containers: system calls added to the allow-list of their image (`i386:NAME` for a compat call). */
  allowlistAdd: Array<{ name: string; pos: SourcePos }>;
}

const TOP_KEYS = ['apiVersion', 'kind', 'metadata', 'spec'];
const SPEC_KEYS = ['selector', 'rules', 'overrides', 'lists', 'macros', 'allowlist'];
const ALLOWLIST_KEYS = ['add'];
const RULE_KEYS = ['name', 'description', 'kinds', 'condition', 'severity', 'tags', 'action', 'exceptions', 'enabled', 'once', 'threshold'];
const OVERRIDE_KEYS = ['rule', 'enabled', 'action', 'severity', 'exceptions'];
const SELECTOR_KEYS = ['image', 'name', 'labels'];
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

class Reader {
  constructor(readonly file: string, private readonly lines: LineCounter, readonly problems: PolicyProblem[]) {}

  posOf(offset: number): SourcePos {
    const p = this.lines.linePos(offset);
    return { file: this.file, line: p.line, col: p.col };
  }

  at(node: Node | Pair | null | undefined, fallback: SourcePos): SourcePos {
    const n = node && 'range' in node ? node : node && 'key' in node ? (node.key as Node | null) : undefined;
    const range = n && 'range' in n ? n.range : undefined;
    return range ? this.posOf(range[0]) : fallback;
  }

  problem(pos: SourcePos, message: string): void {
    this.problems.push({ ...pos, message });
  }

  /** The pairs of a mapping; reports keys not in `known`. */
  mapping(node: unknown, where: string, pos: SourcePos, known: readonly string[]): Map<string, { pair: Pair; pos: SourcePos }> | undefined {
    if (!isMap(node)) {
      this.problem(this.at(node as Node, pos), `${where} must be a mapping with keys ${known.join(', ')}`);
      return undefined;
    }
    const out = new Map<string, { pair: Pair; pos: SourcePos }>();
    for (const pair of (node as YAMLMap).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      const kpos = this.at(pair.key as Node, pos);
      if (key === undefined) {
        this.problem(kpos, `${where}: keys must be plain names`);
        continue;
      }
      if (!known.includes(key)) {
        this.problem(kpos, `${where}: unknown key '${key}'; known keys are ${known.join(', ')}`);
        continue;
      }
      if (out.has(key)) {
        this.problem(kpos, `${where}: key '${key}' given twice`);
        continue;
      }
      out.set(key, { pair, pos: kpos });
    }
    return out;
  }

  string(entry: { pair: Pair; pos: SourcePos } | undefined, where: string, required = false): string | undefined {
    if (!entry) {
      return undefined;
    }
    const v = entry.pair.value;
    if (!isScalar(v) || typeof v.value !== 'string' || (required && v.value === '')) {
      this.problem(this.at(v as Node, entry.pos), `${where} must be ${required ? 'a non-empty' : 'a'} string`);
      return undefined;
    }
    return v.value;
  }

  bool(entry: { pair: Pair; pos: SourcePos } | undefined, where: string): boolean | undefined {
    if (!entry) return undefined;
    const v = entry.pair.value;
    if (!isScalar(v) || typeof v.value !== 'boolean') {
      this.problem(this.at(v as Node, entry.pos), `${where} must be true or false`);
      return undefined;
    }
    return v.value;
  }

  stringList(entry: { pair: Pair; pos: SourcePos } | undefined, where: string, allowScalar = false): string[] | undefined {
    if (!entry) return undefined;
    const v = entry.pair.value;
    if (allowScalar && isScalar(v) && typeof v.value === 'string') return [v.value];
    if (!isSeq(v) || !v.items.every((i) => isScalar(i) && typeof i.value === 'string' && i.value !== '')) {
      this.problem(this.at(v as Node, entry.pos), `${where} must be a list of non-empty strings`);
      return undefined;
    }
    return v.items.map((i) => String((i as Scalar).value));
  }

  oneOf<T extends string>(entry: { pair: Pair; pos: SourcePos } | undefined, where: string, allowed: readonly T[]): T | undefined {
    const s = this.string(entry, where);
    if (s === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(s)) {
      this.problem(this.at(entry!.pair.value as Node, entry!.pos), `${where} must be one of ${allowed.join(', ')}, not '${s}'`);
      return undefined;
    }
    return s as T;
  }

  /** A CEL expression from a scalar, with offsets mapped back to the file. */
  cel(entry: { pair: Pair; pos: SourcePos } | undefined, where: string): CelSource | undefined {
    if (!entry) return undefined;
    const node = entry.pair.value;
    if (!isScalar(node) || typeof node.value !== 'string' || node.value.trim() === '') {
      this.problem(this.at(node as Node, entry.pos), `${where} must be a CEL expression (a non-empty string)`);
      return undefined;
    }
    return this.celOf(node as Scalar, node.value);
  }

  celOf(node: Scalar, text: string): CelSource {
    const range = node.range ?? [0, 0, 0];
    const pos = this.posOf(range[0]);
    const map = scalarOffsets(this.source, node.type, range[0], range[1], text);
    const at = (o: number): SourcePos => {
      if (map.length === 0) return pos;
      // Past the end (an error at end of input): just after the last character.
      const i = Math.max(0, Math.min(Math.floor(o), map.length));
      return this.posOf(i < map.length ? (map[i] as number) : (map[map.length - 1] as number) + 1);
    };
    return { text, pos, at };
  }

  private source = '';
  setSource(s: string): void {
    this.source = s;
  }
}

const SPACE = /[ \t\r\n]/;

/**
 * The file offset of every character of a scalar's value, found by walking the value
 * and the source text side by side. YAML only changes whitespace when it folds lines
 * (plain, quoted and folded scalars) or strips indentation (block scalars), and only
 * quoted scalars have escapes (`\"`, `\\`, `\xNN`, … in double quotes, `''` in single
 * quotes): so every non-space character of the value is the next non-space character of
 * the source, an escape standing for what it decodes to.
 */
export function scalarOffsets(src: string, type: string | undefined, start: number, end: number, value: string): number[] {
  const map: number[] = [];
  let s = start;
  const dq = type === 'QUOTE_DOUBLE';
  const sq = type === 'QUOTE_SINGLE';
  if (dq || sq) s = start + 1;
  else if (type === 'BLOCK_FOLDED' || type === 'BLOCK_LITERAL') {
    // The header (`>-`, `|`, `|2+`, maybe a comment) ends at its line's end.
    const nl = src.indexOf('\n', start);
    s = nl < 0 ? end : nl + 1;
  }
  const limit = Math.max(end, s);
  /** Length of the escape at src[i] (a backslash) in a double-quoted scalar. */
  const escapeLength = (i: number): number => {
    const c = src[i + 1];
    if (c === 'x') return 4;
    if (c === 'u') return 6;
    if (c === 'U') return 10;
    return 2;
  };
  for (let i = 0; i < value.length; i++) {
    const v = value[i] as string;
    if (SPACE.test(v)) {
      // Folding turns a line break into a space (or drops it): map to where we are.
      if (src[s] === v) map.push(s++);
      else if (dq && src[s] === '\\' && src[s + 1] !== '\n' && src[s + 1] !== '\r') {
        map.push(s);
        s += escapeLength(s);
      } else map.push(Math.min(s, limit));
      continue;
    }
    // Skip the source's whitespace, and escaped line breaks of a double-quoted scalar.
    for (;;) {
      while (s < limit && SPACE.test(src[s] as string)) s++;
      if (dq && src[s] === '\\' && (src[s + 1] === '\n' || src[s + 1] === '\r')) {
        s += 2;
        continue;
      }
      break;
    }
    map.push(Math.min(s, limit));
    if (dq && src[s] === '\\') {
      s += escapeLength(s);
      // \U beyond the BMP decodes to two UTF-16 units: both map to the escape.
      if (v.charCodeAt(0) >= 0xd800 && v.charCodeAt(0) < 0xdc00 && i + 1 < value.length) map.push(map[map.length - 1] as number), i++;
    } else if (sq && v === "'" && src[s] === "'" && src[s + 1] === "'") s += 2;
    else if (s < limit) {
      // A character outside the BMP is two UTF-16 units in both strings.
      s++;
    }
  }
  return map;
}

/**
 * Reads every policy document of one YAML file (documents separated by `---`). When it
 * adds to `problems`, the documents returned hold only the parts that read cleanly: good
 * for finding more problems, never for use.
 */
export function readPolicyText(text: string, file: string, problems: PolicyProblem[]): PolicyDoc[] {
  const lines = new LineCounter();
  const r = new Reader(file, lines, problems);
  r.setSource(text);
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const out: PolicyDoc[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        // The parser may point at the indentation before the token it stopped at.
        let o = e.pos[0];
        while (text[o] === ' ') o++;
        r.problem(r.posOf(o), `YAML: ${e.message.split('\n')[0]}`);
      }
      continue;
    }
    if (doc.contents === null) continue; // an empty document
    const policy = readPolicy(r, doc.contents as Node);
    if (policy) out.push(policy);
  }
  return out;
}

function readPolicy(r: Reader, root: Node): PolicyDoc | undefined {
  const start = r.at(root, { file: r.file, line: 1, col: 1 });
  const top = r.mapping(root, 'a policy document', start, TOP_KEYS);
  if (!top) return undefined;
  const api = r.string(top.get('apiVersion'), 'apiVersion');
  if (!top.has('apiVersion')) r.problem(start, `missing apiVersion: ${API_VERSION}`);
  else if (api !== undefined && api !== API_VERSION) r.problem(top.get('apiVersion')!.pos, `apiVersion must be ${API_VERSION}, not '${api}'`);
  const kind = r.string(top.get('kind'), 'kind');
  if (!top.has('kind')) r.problem(start, 'missing kind: Policy');
  else if (kind !== undefined && kind !== 'Policy') r.problem(top.get('kind')!.pos, `kind must be Policy, not '${kind}'`);
  let name = '';
  let namePos = start;
  const meta = top.get('metadata');
  if (!meta) r.problem(start, 'missing metadata.name');
  else {
    const m = r.mapping(meta.pair.value, 'metadata', meta.pos, ['name', 'description']);
    if (m) {
      name = r.string(m.get('name'), 'metadata.name', true) ?? '';
      if (!m.has('name')) r.problem(meta.pos, 'missing metadata.name');
      else namePos = r.at(m.get('name')!.pair.value as Node, start);
      r.string(m.get('description'), 'metadata.description');
    }
  }
  const policy: PolicyDoc = { name, file: r.file, pos: namePos, selector: { image: [], name: [], labels: {} }, everyContainer: true, rules: [], overrides: [], lists: [], macros: [], allowlistAdd: [] };
  const specEntry = top.get('spec');
  if (!specEntry) {
    r.problem(start, 'missing spec');
    return undefined;
  }
  const spec = r.mapping(specEntry.pair.value, 'spec', specEntry.pos, SPEC_KEYS);
  if (!spec) return undefined;
  const sel = spec.get('selector');
  if (sel && !(isScalar(sel.pair.value) && sel.pair.value.value === null)) {
    const s = r.mapping(sel.pair.value, 'spec.selector', sel.pos, SELECTOR_KEYS);
    if (s) {
      policy.selector.image = r.stringList(s.get('image'), 'spec.selector.image', true) ?? [];
      policy.selector.name = r.stringList(s.get('name'), 'spec.selector.name', true) ?? [];
      const labels = s.get('labels');
      if (labels) {
        const lm = labels.pair.value;
        if (!isMap(lm)) r.problem(labels.pos, 'spec.selector.labels must be a mapping of label → value glob');
        else {
          for (const pair of lm.items) {
            const k = isScalar(pair.key) ? String(pair.key.value) : '';
            const v = pair.value;
            if (!k || !isScalar(v) || (typeof v.value !== 'string' && typeof v.value !== 'number' && typeof v.value !== 'boolean')) {
              r.problem(r.at(pair.key as Node, labels.pos), 'spec.selector.labels: each label needs a string value (a glob)');
              continue;
            }
            policy.selector.labels[k] = String(v.value);
          }
        }
      }
    }
    policy.everyContainer = policy.selector.image.length === 0 && policy.selector.name.length === 0 && Object.keys(policy.selector.labels).length === 0;
  }
  readLists(r, spec.get('lists'), policy);
  readMacros(r, spec.get('macros'), policy);
  const rules = spec.get('rules');
  if (rules) {
    if (!isSeq(rules.pair.value)) r.problem(rules.pos, 'spec.rules must be a list of rules');
    else for (const item of rules.pair.value.items) {
      const rule = readRule(r, item as Node, rules.pos);
      if (rule) policy.rules.push(rule);
    }
  }
  const overrides = spec.get('overrides');
  if (overrides) {
    if (!isSeq(overrides.pair.value)) r.problem(overrides.pos, 'spec.overrides must be a list');
    else for (const item of overrides.pair.value.items) {
      const o = readOverride(r, item as Node, overrides.pos);
      if (o) policy.overrides.push(o);
    }
  }
  const allowlist = spec.get('allowlist');
  if (allowlist) {
    const a = r.mapping(allowlist.pair.value, 'spec.allowlist', allowlist.pos, ALLOWLIST_KEYS);
    const add = a?.get('add');
    for (const name of r.stringList(add, 'spec.allowlist.add') ?? []) policy.allowlistAdd.push({ name, pos: add?.pos ?? allowlist.pos });
  }
  // With problems, what could be read is still returned (the loader compiles it to report
  // every problem at once); a set with problems is never used.
  return policy;
}

function readLists(r: Reader, entry: { pair: Pair; pos: SourcePos } | undefined, policy: PolicyDoc): void {
  if (!entry) return;
  const node = entry.pair.value;
  if (!isMap(node)) {
    r.problem(entry.pos, 'spec.lists must be a mapping of list name → items (or {append: [items]})');
    return;
  }
  for (const pair of node.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const pos = r.at(pair.key as Node, entry.pos);
    if (!NAME_RE.test(name)) {
      r.problem(pos, `list name '${name}' must be an identifier (letters, digits, _), as conditions name it`);
      continue;
    }
    let seq: unknown = pair.value;
    let append = false;
    if (isMap(pair.value)) {
      const m = r.mapping(pair.value, `list ${name}`, pos, ['append']);
      if (!m || !m.has('append')) {
        if (m) r.problem(pos, `list ${name}: a mapping must be {append: [items]}`);
        continue;
      }
      seq = m.get('append')!.pair.value;
      append = true;
    }
    if (!isSeq(seq)) {
      r.problem(pos, `list ${name} must be a list of strings or numbers`);
      continue;
    }
    const items: Array<string | number> = [];
    let ok = true;
    for (const it of seq.items) {
      if (isScalar(it) && (typeof it.value === 'string' || typeof it.value === 'number')) items.push(it.value);
      else {
        r.problem(r.at(it as Node, pos), `list ${name}: items must be strings or numbers`);
        ok = false;
      }
    }
    if (ok && items.length > 0 && !items.every((i) => typeof i === typeof items[0])) {
      r.problem(pos, `list ${name}: items must be all strings or all numbers`);
      ok = false;
    }
    if (ok) policy.lists.push({ name, items, append, pos });
  }
}

function readMacros(r: Reader, entry: { pair: Pair; pos: SourcePos } | undefined, policy: PolicyDoc): void {
  if (!entry) return;
  const node = entry.pair.value;
  if (!isMap(node)) {
    r.problem(entry.pos, 'spec.macros must be a mapping of macro name → CEL condition');
    return;
  }
  for (const pair of node.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const pos = r.at(pair.key as Node, entry.pos);
    if (!NAME_RE.test(name)) {
      r.problem(pos, `macro name '${name}' must be an identifier (letters, digits, _)`);
      continue;
    }
    const cel = r.cel({ pair, pos }, `macro ${name}`);
    if (cel) policy.macros.push({ name, condition: cel, pos });
  }
}

function readExceptions(r: Reader, entry: { pair: Pair; pos: SourcePos } | undefined, where: string): ExceptionDoc[] {
  if (!entry) return [];
  const node = entry.pair.value;
  if (!isSeq(node)) {
    r.problem(entry.pos, `${where}.exceptions must be a list of CEL conditions or {name, condition}`);
    return [];
  }
  const out: ExceptionDoc[] = [];
  node.items.forEach((item, i) => {
    const ipos = r.at(item as Node, entry.pos);
    if (isScalar(item) && typeof item.value === 'string') {
      out.push({ name: `#${i + 1}`, condition: r.celOf(item as Scalar, item.value) });
      return;
    }
    const m = r.mapping(item, `${where}.exceptions[${i}]`, ipos, ['name', 'condition']);
    if (!m) return;
    const name = r.string(m.get('name'), `${where}.exceptions[${i}].name`, true) ?? `#${i + 1}`;
    const cond = r.cel(m.get('condition'), `${where}.exceptions[${i}].condition`);
    if (!m.has('condition')) r.problem(ipos, `${where}.exceptions[${i}]: missing condition`);
    if (cond) out.push({ name, condition: cond });
  });
  return out;
}

function readRule(r: Reader, node: Node, fallback: SourcePos): RuleDoc | undefined {
  const pos = r.at(node, fallback);
  const before = r.problems.length;
  const m = r.mapping(node, 'a rule', pos, RULE_KEYS);
  if (!m) return undefined;
  const name = r.string(m.get('name'), 'rule name', true);
  if (!m.has('name')) r.problem(pos, 'a rule needs a name');
  // A rule is where its name is written: a duplicate name is reported there.
  const namePos = m.has('name') ? r.at(m.get('name')!.pair.value as Node, pos) : pos;
  const where = `rule '${name ?? '?'}'`;
  const condition = r.cel(m.get('condition'), `${where}: condition`);
  if (!m.has('condition')) r.problem(pos, `${where}: missing condition`);
  const kinds = r.stringList(m.get('kinds'), `${where}: kinds`, true);
  if (kinds) {
    const bad = kinds.filter((k) => !(EVENT_KINDS as readonly string[]).includes(k));
    if (bad.length) {
      // Pointed at the first unknown kind as written.
      const v = m.get('kinds')!.pair.value;
      const item = isSeq(v) ? v.items.find((i) => isScalar(i) && i.value === bad[0]) : v;
      r.problem(r.at(item as Node, m.get('kinds')!.pos), `${where}: unknown event kind ${bad.map((b) => `'${b}'`).join(', ')}; kinds are ${EVENT_KINDS.join(', ')}`);
    }
  }
  const severity = m.has('severity') ? r.oneOf(m.get('severity'), `${where}: severity`, SEVERITIES) : 'medium';
  const action = m.has('action') ? r.oneOf(m.get('action'), `${where}: action`, ACTIONS) : 'alert';
  const tags = r.stringList(m.get('tags'), `${where}: tags`) ?? [];
  const description = r.string(m.get('description'), `${where}: description`) ?? '';
  const enabled = r.bool(m.get('enabled'), `${where}: enabled`) ?? true;
  const exceptions = readExceptions(r, m.get('exceptions'), where);
  const once = r.cel(m.get('once'), `${where}: once`);
  let threshold: RuleDoc['threshold'];
  const t = m.get('threshold');
  if (t) {
    const tm = r.mapping(t.pair.value, `${where}: threshold`, t.pos, ['count', 'seconds', 'per']);
    if (tm) {
      const num = (k: string, max: number) => {
        const e = tm.get(k);
        const v = e && isScalar(e.pair.value) ? e.pair.value.value : undefined;
        if (typeof v !== 'number' || !(v > 0) || v > max || (k === 'count' && !Number.isInteger(v))) {
          r.problem(e?.pos ?? t.pos, `${where}: threshold.${k} must be a ${k === 'count' ? 'whole ' : ''}number from 1 to ${max}`);
          return 0;
        }
        return v;
      };
      const per = tm.has('per') ? r.oneOf(tm.get('per'), `${where}: threshold.per`, ['process', 'container'] as const) : 'process';
      threshold = { count: num('count', 100000), seconds: num('seconds', 3600), per: per ?? 'process' };
    }
  }
  if (r.problems.length !== before || !name || !condition || !severity || !action) return undefined;
  return { name, description, kinds: kinds as EventKind[] | undefined, condition, severity, tags, action, exceptions, enabled, once, threshold, pos: namePos };
}

function readOverride(r: Reader, node: Node, fallback: SourcePos): OverrideDoc | undefined {
  const pos = r.at(node, fallback);
  const before = r.problems.length;
  const m = r.mapping(node, 'an override', pos, OVERRIDE_KEYS);
  if (!m) return undefined;
  const rule = r.string(m.get('rule'), 'override rule', true);
  if (!m.has('rule')) r.problem(pos, 'an override names the rule it changes (rule: NAME)');
  // An override is where the rule it names is written: an unknown rule is reported there.
  const rulePos = m.has('rule') ? r.at(m.get('rule')!.pair.value as Node, pos) : pos;
  const where = `override of '${rule ?? '?'}'`;
  const enabled = r.bool(m.get('enabled'), `${where}: enabled`);
  const action = m.has('action') ? r.oneOf(m.get('action'), `${where}: action`, ACTIONS) : undefined;
  const severity = m.has('severity') ? r.oneOf(m.get('severity'), `${where}: severity`, SEVERITIES) : undefined;
  const exceptions = readExceptions(r, m.get('exceptions'), where);
  if (r.problems.length !== before || !rule) return undefined;
  return { rule, enabled, action, severity, exceptions, pos: rulePos };
}
