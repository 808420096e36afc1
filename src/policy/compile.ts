// Conditions compiled to JavaScript closures: the checked CEL AST (of @marcbachmann/cel-js)
// turned, once at load, into nested closures that read the event as the JSON log carries
// it (integers as JS numbers, no BigInt view, no activation object) and keep CEL's
// semantics, errors included: an error on one side of && or || is absorbed when the other
// side decides the result, exists()/all() absorb an element's error the same way, and at
// the top an error counts as false (the caller's business). Only the subset the rules
// use is compiled; for any other construct compileClosure returns undefined and the
// caller keeps the interpreter.
//
// Values at run time: strings, booleans, null, numbers (CEL int and double alike: the
// interpreter compares them by value across the two types, and the JSON log holds both
// as numbers), bigint only for an integer beyond 2^53 (a literal, or int() of one),
// arrays (lists) and plain objects (maps: args, labels, map literals). The event's
// messages (process, container, namespaces) are never values: a field of them is read
// straight from the event.
import type { VigilEvent } from '../events/index.js';
import { inNetworks } from './cel.js';

/** A compiled expression: its value for an event and its container view, or a thrown CelFailure. */
export type EventFn = (e: VigilEvent, c: Record<string, unknown>, round: number) => unknown;

/** What a compiled expression throws for a CEL evaluation error (one object: throwing it costs no stack trace). */
export const CEL_ERROR: { readonly celError: true } = Object.freeze({ celError: true });

/**
 * For benchmarks and tests: enabled false makes compileClosure compile nothing (every
 * condition interpreted); generate false builds the tree of closures instead of one
 * generated function per condition.
 */
export const closureOptions = { enabled: true, generate: true };

/** The node shape of the library's checked AST, as far as this compiler reads it. */
interface Node {
  op: string;
  args: unknown;
  checkedType?: { kind: string; name: string; type?: string };
  meta: { alternate?: Node; macro?: unknown };
}

const hasOwn = (o: object, k: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(o, k);
const EMPTY: readonly string[] = Object.freeze([]);

function fail(): never {
  throw CEL_ERROR;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNum(v: unknown): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** CEL equality as the interpreter has it: by value, numbers across int and double, different types unequal. */
export function celEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isNum(a)) return isNum(b) && a == b; // eslint-disable-line eqeqeq
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!celEquals(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!(k in b) || !celEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** A value of the library's AST (a literal, a list constant) in this compiler's representation, or undefined. */
function fromLiteral(v: unknown): { value: unknown } | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'number':
      return { value: v };
    case 'bigint':
      return { value: v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v };
    case 'object': {
      if (v === null) return { value: null };
      if (!Array.isArray(v)) return undefined; // maps, bytes, uint, types: not compiled
      const items: unknown[] = [];
      for (const x of v) {
        const item = fromLiteral(x);
        if (!item) return undefined;
        items.push(item.value);
      }
      return { value: Object.freeze(items) };
    }
    default:
      return undefined;
  }
}

type Reader = (e: VigilEvent, c: Record<string, unknown>) => unknown;
type FieldType = 'string' | 'int' | 'bool' | 'list' | 'map';

/** The event's fields as activationOf (activation.ts) presents them to the interpreter, with its defaults. */
const TOP: Record<string, Reader> = {
  seq: (e) => e.seq,
  time: (e) => e.time,
  host: (e) => e.host,
  kind: (e) => e.kind,
  syscall: (e) => e.syscall,
  args: (e) => e.args,
  ret: (e) => e.ret,
  error: (e) => e.error ?? '',
};

const MESSAGES: Record<string, Record<string, [Reader, FieldType]>> = {
  process: {
    pid: [(e) => e.process.pid, 'int'],
    nsPid: [(e) => e.process.nsPid, 'int'],
    ppid: [(e) => e.process.ppid, 'int'],
    parent: [(e) => e.process.parent, 'string'],
    comm: [(e) => e.process.comm, 'string'],
    exe: [(e) => e.process.exe, 'string'],
    args: [(e) => e.process.args, 'list'],
    argsTruncated: [(e) => e.process.argsTruncated, 'bool'],
    uid: [(e) => e.process.uid, 'int'],
    gid: [(e) => e.process.gid, 'int'],
    caps: [(e) => e.process.caps, 'list'],
    containerSetup: [(e) => e.process.containerSetup, 'bool'],
    ancestors: [(e) => e.process.ancestors ?? EMPTY, 'list'],
    entered: [(e) => e.process.entered ?? false, 'bool'],
    stdio: [(e) => e.process.stdio ?? EMPTY, 'list'],
    exeWritten: [(e) => e.process.exeWritten ?? false, 'bool'],
    exeInImage: [(e) => e.process.exeInImage ?? true, 'bool'],
    parentExe: [(e) => e.process.parentExe ?? '', 'string'],
    name: [(e) => e.process.name ?? e.process.comm, 'string'],
  },
  container: {
    id: [(_e, c) => c['id'], 'string'],
    name: [(_e, c) => c['name'], 'string'],
    image: [(_e, c) => c['image'], 'string'],
    runtime: [(_e, c) => c['runtime'], 'string'],
    labels: [(_e, c) => c['labels'], 'map'],
  },
  namespaces: {
    mnt: [(e) => e.namespaces.mnt, 'int'],
    pid: [(e) => e.namespaces.pid, 'int'],
    cgroupId: [(e) => e.namespaces.cgroupId, 'string'],
    containerKey: [(e) => e.namespaces.containerKey, 'string'],
  },
};

/** A message field read as the interpreter reads it: missing is an error, so is a value of another type. */
/** has()'s argument as a variable and the fields selected from it (x.a.b → x, [a, b]); both back ends read it so. */
function fieldChain(arg: Node | undefined): { name: string; keys: string[] } | undefined {
  if (arg?.op !== '.') return undefined;
  const keys: string[] = [];
  let root: Node = arg;
  while (root.op === '.') {
    const [on, key] = root.args as [Node, string];
    keys.unshift(key);
    root = on;
  }
  return root.op === 'id' ? { name: root.args as string, keys } : undefined;
}

/** A field of one of the event's messages (process, container, namespaces), with its reader and type. */
function eventField(message: string, key: string): [Reader, FieldType] | undefined {
  const fields = MESSAGES[message] as Record<string, [Reader, FieldType]>;
  return hasOwn(fields, key) ? fields[key] : undefined;
}

function messageField(read: Reader, type: FieldType): EventFn {
  switch (type) {
    case 'string':
      return (e, c) => {
        const v = read(e, c);
        return typeof v === 'string' ? v : fail();
      };
    case 'bool':
      return (e, c) => {
        const v = read(e, c);
        return typeof v === 'boolean' ? v : fail();
      };
    case 'int':
      return (e, c) => {
        const v = read(e, c);
        return typeof v === 'number' && Number.isInteger(v) ? v : fail();
      };
    case 'list':
      return (e, c) => {
        const v = read(e, c);
        return Array.isArray(v) ? v : fail();
      };
    case 'map':
      return (e, c) => {
        const v = read(e, c);
        return isMap(v) ? v : fail();
      };
  }
}

/** A field of a map (or of a dyn value): present and not undefined, else an error. */
function selectField(obj: unknown, key: string): unknown {
  if (isMap(obj) && hasOwn(obj, key)) {
    const v = obj[key];
    if (v !== undefined) return v;
  }
  return fail();
}

/** has()'s view of one step: the field's value, or undefined when the value has no such field. */
function fieldOrUndefined(obj: unknown, key: string): unknown {
  return isMap(obj) && hasOwn(obj, key) ? obj[key] : undefined;
}

function celString(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
    case 'bigint':
      return `${v}`;
    case 'number':
      if (v === Infinity) return '+Inf';
      if (v === -Infinity) return '-Inf';
      return `${v}`;
    default:
      return fail();
  }
}

const MIN_INT = -(2n ** 63n);
const MAX_INT = 2n ** 63n - 1n;

function normalInt(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function celInt(v: unknown): number | bigint {
  switch (typeof v) {
    case 'bigint':
      return v;
    case 'number': {
      if (!Number.isFinite(v)) return fail();
      const t = Math.trunc(v);
      return Number.isSafeInteger(t) ? t : BigInt(t);
    }
    case 'string': {
      if (v !== v.trim() || v.length > 20 || v.includes('0x')) return fail();
      let n: bigint;
      try {
        n = BigInt(v);
      } catch {
        return fail();
      }
      return n <= MAX_INT && n >= MIN_INT ? normalInt(n) : fail();
    }
    default:
      return fail();
  }
}

function celSize(v: unknown): number {
  if (typeof v === 'string') {
    let n = 0;
    for (let i = 0; i < v.length; i++) {
      const code = v.charCodeAt(i);
      // A surrogate pair is one code point.
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < v.length) {
        const next = v.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) i++;
      }
      n++;
    }
    return n;
  }
  if (Array.isArray(v)) return v.length;
  if (isMap(v)) return Object.keys(v).length;
  return fail();
}

function compare(op: string, a: unknown, b: unknown): boolean {
  const ok = (isNum(a) && isNum(b)) || (typeof a === 'string' && typeof b === 'string') || (typeof a === 'boolean' && typeof b === 'boolean');
  if (!ok) return fail();
  const x = a as number;
  const y = b as number;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    default:
      return x >= y;
  }
}

function listIncludes(list: readonly unknown[], v: unknown): boolean {
  for (let i = 0; i < list.length; i++) if (celEquals(v, list[i])) return true;
  return false;
}

/** `v in container`: a list's element, or a map's key. */
function celIn(v: unknown, container: unknown): boolean {
  if (Array.isArray(container)) return listIncludes(container, v);
  if (isMap(container)) return hasOwn(container, v as PropertyKey) ? container[v as string] !== undefined : false;
  return fail();
}

const regexCache = new Map<string, RegExp | null>();

function regex(pattern: string): RegExp | null {
  let r = regexCache.get(pattern);
  if (r === undefined) {
    try {
      r = new RegExp(pattern);
    } catch {
      r = null;
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, r);
  }
  return r;
}

const STRING_METHODS: Record<string, (s: string, arg: string) => boolean> = {
  startsWith: (s, a) => s.startsWith(a),
  endsWith: (s, a) => s.endsWith(a),
  contains: (s, a) => s.includes(a),
  matches: (s, a) => {
    const r = regex(a);
    return r ? r.test(s) : fail();
  },
};

/** Compile-time scope: comprehension variables, by name, to their slot in the frame. */
type Scope = ReadonlyMap<string, number>;

/**
 * Subexpressions shared by the conditions of one compiler (one policy set): the macros
 * (file_path, opened_for_writing...) that many rules expand, computed once per event and
 * round. A slot per distinct subexpression; its value counts for one round only.
 */
interface MemoTable {
  slots: Map<string, number>;
  /** How many compiled nodes have the slot's subexpression: only a subexpression met twice is worth remembering. */
  uses: number[];
  rounds: number[];
  values: unknown[];
}

const memoTables = new WeakMap<object, MemoTable>();
let lastRound = 0;

/** A new evaluation round: the values remembered for an earlier one are not used again. */
export function newRound(): number {
  lastRound = (lastRound + 1) | 0;
  return lastRound;
}

/** Operators whose value is worth remembering when the same subexpression comes back (cheaper ones are recomputed). */
const MEMO_OPS = new Set(['&&', '||', '?:', 'call', 'rcall', 'in']);

function isNode(x: unknown): x is Node {
  return typeof x === 'object' && x !== null && typeof (x as Node).op === 'string' && 'args' in (x as object);
}

/** A structural key of a subexpression: equal keys in one compiler mean the same value for the same event. */
function keyOf(x: unknown): string {
  if (isNode(x)) {
    if (x.op === 'value') return `v${JSON.stringify(x.args, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`;
    if (x.op === 'id') return `i${String(x.args)}`;
    return `${x.op}(${keyOf(x.args)})`;
  }
  if (Array.isArray(x)) return `[${x.map(keyOf).join(',')}]`;
  return typeof x === 'string' ? JSON.stringify(x) : String(x);
}

/** Does the subexpression read one of the comprehension variables named (then its value differs per element)? */
function readsAny(x: unknown, names: ReadonlySet<string>): boolean {
  if (names.size === 0) return false;
  if (isNode(x)) {
    if (x.op === 'id') return names.has(x.args as string);
    if (x.op === 'value') return false;
    if (x.op === '.') return readsAny((x.args as unknown[])[0], names);
    if (x.op === 'rcall' && x.meta?.alternate?.op === 'comprehension') {
      const [, recv, args] = x.args as [string, Node, Node[]];
      const inner = new Set(names);
      inner.delete(args[0]?.args as string);
      return readsAny(recv, names) || readsAny(args.slice(1), inner);
    }
    return readsAny(x.args, names);
  }
  return Array.isArray(x) && x.some((y) => readsAny(y, names));
}

class Compiler {
  /** Values of comprehension variables during one evaluation (evaluation is synchronous, never re-entered). */
  readonly frame: unknown[] = [];
  private slots = 0;

  constructor(private readonly memo: MemoTable) {}

  node(n: Node, scope: Scope): EventFn | undefined {
    const fn = this.build(n, scope);
    if (!fn || !MEMO_OPS.has(n.op) || (n.op === 'call' && n.meta?.macro) || readsAny(n, new Set(scope.keys()))) return fn;
    return this.remembered(keyOf(n), fn);
  }

  /** fn, its value (or error) remembered for the round when another node has the same subexpression. */
  private remembered(key: string, fn: EventFn): EventFn {
    const m = this.memo;
    let slot = m.slots.get(key);
    if (slot === undefined) {
      slot = m.slots.size;
      m.slots.set(key, slot);
      m.uses.push(0);
      m.rounds.push(0);
      m.values.push(undefined);
    }
    const i = slot;
    m.uses[i] = (m.uses[i] as number) + 1;
    const { uses, rounds, values } = m;
    return (e, c, rd) => {
      if ((uses[i] as number) < 2) return fn(e, c, rd);
      if (rounds[i] === rd) {
        const v = values[i];
        return v === CEL_ERROR ? fail() : v;
      }
      let v: unknown;
      try {
        v = fn(e, c, rd);
      } catch (x) {
        values[i] = CEL_ERROR;
        rounds[i] = rd;
        throw x;
      }
      values[i] = v;
      rounds[i] = rd;
      return v;
    };
  }

  private build(n: Node, scope: Scope): EventFn | undefined {
    if (n.meta?.alternate && n.op !== 'rcall') {
      // A list constant (an id the environment replaced by its value).
      if (n.op === 'id' && n.meta.alternate.op === 'value') return this.constant(n.meta.alternate.args);
      return undefined;
    }
    switch (n.op) {
      case 'value':
        return this.constant(n.args);
      case 'id':
        return this.identifier(n.args as string, scope);
      case '.':
        return this.select(n, scope);
      case '[]':
        return this.index(n, scope);
      case '&&':
      case '||':
        return this.logical(n, scope);
      case '!_': {
        const a = this.node(n.args as Node, scope);
        if (!a) return undefined;
        return (e, c, rd) => {
          const v = a(e, c, rd);
          return typeof v === 'boolean' ? !v : fail();
        };
      }
      case '-_': {
        const a = this.node(n.args as Node, scope);
        if (!a) return undefined;
        return (e, c, rd) => {
          const v = a(e, c, rd);
          return typeof v === 'number' ? -v : typeof v === 'bigint' ? normalInt(-v) : fail();
        };
      }
      case '?:': {
        const [cn, ln, rn] = n.args as Node[];
        const cond = this.node(cn as Node, scope);
        const l = this.node(ln as Node, scope);
        const r = this.node(rn as Node, scope);
        if (!cond || !l || !r) return undefined;
        return (e, c, rd) => {
          const v = cond(e, c, rd);
          if (v === true) return l(e, c, rd);
          if (v === false) return r(e, c, rd);
          return fail();
        };
      }
      case '==':
      case '!=':
        return this.equality(n, scope);
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const op = n.op;
        const [ln, rn] = n.args as Node[];
        const l = this.node(ln as Node, scope);
        const r = this.node(rn as Node, scope);
        if (!l || !r) return undefined;
        return (e, c, rd) => compare(op, l(e, c, rd), r(e, c, rd));
      }
      case 'in':
        return this.membership(n, scope);
      case '+': {
        // Only string concatenation: int arithmetic has overflow rules and int + double is an error.
        const [ln, rn] = n.args as Node[];
        // One side a checked string is enough: the checker then accepted only string + string
        // (a comprehension variable over a list<string> may carry no checked type of its own).
        if (ln?.checkedType?.name !== 'string' && rn?.checkedType?.name !== 'string') return undefined;
        const l = this.node(ln, scope);
        const r = this.node(rn, scope);
        if (!l || !r) return undefined;
        return (e, c, rd) => {
          const a = l(e, c, rd);
          const b = r(e, c, rd);
          return typeof a === 'string' && typeof b === 'string' ? a + b : fail();
        };
      }
      case 'list': {
        const items = (n.args as Node[]).map((x) => this.node(x, scope));
        if (items.some((x) => !x)) return undefined;
        const fns = items as EventFn[];
        const literal = this.literalList(n);
        if (literal) return () => literal;
        return (e, c, rd) => fns.map((f) => f(e, c, rd));
      }
      case 'map': {
        const entries = (n.args as Array<[Node, Node]>).map(([k, v]) => [this.node(k, scope), this.node(v, scope)] as const);
        if (entries.some(([k, v]) => !k || !v)) return undefined;
        return (e, c, rd) => {
          const obj: Record<string, unknown> = {};
          for (const [k, v] of entries) {
            const key = String((k as EventFn)(e, c, rd));
            const value = (v as EventFn)(e, c, rd);
            if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
            obj[key] = value;
          }
          return obj;
        };
      }
      case 'call':
        return this.call(n, scope);
      case 'rcall':
        return this.method(n, scope);
      default:
        return undefined;
    }
  }

  private constant(v: unknown): EventFn | undefined {
    const lit = fromLiteral(v);
    if (!lit) return undefined;
    const value = lit.value;
    return () => value;
  }

  /** The items of a list of literals (constants folded once), or undefined. */
  private literalList(n: Node): readonly unknown[] | undefined {
    const items: unknown[] = [];
    for (const x of n.args as Node[]) {
      const src = x.op === 'id' && x.meta?.alternate?.op === 'value' ? x.meta.alternate : x;
      if (src.op !== 'value') return undefined;
      const lit = fromLiteral(src.args);
      if (!lit) return undefined;
      items.push(lit.value);
    }
    return Object.freeze(items);
  }

  /** The value of a node known at compile time (a literal, a list constant, a list of literals). */
  private constantValue(n: Node): { value: unknown } | undefined {
    if (n.op === 'value') return fromLiteral(n.args);
    if (n.op === 'id' && n.meta?.alternate?.op === 'value') return fromLiteral(n.meta.alternate.args);
    if (n.op === 'list') {
      const l = this.literalList(n);
      return l ? { value: l } : undefined;
    }
    return undefined;
  }

  private identifier(name: string, scope: Scope): EventFn | undefined {
    const slot = scope.get(name);
    if (slot !== undefined) {
      const frame = this.frame;
      return () => frame[slot];
    }
    return hasOwn(TOP, name) ? (TOP[name] as EventFn) : undefined;
  }

  /** A message field (process.comm), a map field (args.path) or a field of a dyn value. */
  private select(n: Node, scope: Scope): EventFn | undefined {
    const [on, key] = n.args as [Node, string];
    if (on.op === 'id' && !scope.has(on.args as string) && hasOwn(MESSAGES, on.args as string)) {
      const field = eventField(on.args as string, key);
      return field ? messageField(field[0], field[1]) : undefined;
    }
    const obj = this.node(on, scope);
    if (!obj) return undefined;
    return (e, c, rd) => selectField(obj(e, c, rd), key);
  }

  private index(n: Node, scope: Scope): EventFn | undefined {
    const [on, kn] = n.args as [Node, Node];
    const obj = this.node(on, scope);
    const key = this.node(kn, scope);
    if (!obj || !key) return undefined;
    return (e, c, rd) => {
      const o = obj(e, c, rd);
      const k = key(e, c, rd);
      if (Array.isArray(o)) {
        if (!isNum(k)) return fail();
        const v = o[Number(k)];
        return v === undefined ? fail() : v;
      }
      if (isMap(o) && hasOwn(o, k as PropertyKey)) {
        const v = o[k as string];
        if (v !== undefined) return v;
      }
      return fail();
    };
  }

  private logical(n: Node, scope: Scope): EventFn | undefined {
    const [ln, rn] = n.args as Node[];
    const l = this.node(ln as Node, scope);
    const r = this.node(rn as Node, scope);
    if (!l || !r) return undefined;
    if (n.op === '&&') {
      return (e, c, rd) => {
        let a: unknown;
        try {
          a = l(e, c, rd);
        } catch {
          a = CEL_ERROR;
        }
        if (a === false) return false;
        const b = r(e, c, rd);
        if (a === true) return typeof b === 'boolean' ? b : fail();
        return b === false ? false : fail();
      };
    }
    return (e, c, rd) => {
      let a: unknown;
      try {
        a = l(e, c, rd);
      } catch {
        a = CEL_ERROR;
      }
      if (a === true) return true;
      const b = r(e, c, rd);
      if (a === false) return typeof b === 'boolean' ? b : fail();
      return b === true ? true : fail();
    };
  }

  private equality(n: Node, scope: Scope): EventFn | undefined {
    const negate = n.op === '!=';
    const [ln, rn] = n.args as Node[];
    const l = this.node(ln as Node, scope);
    const r = this.node(rn as Node, scope);
    if (!l || !r) return undefined;
    // Against a string, bool or null literal, equality is identity (a different type is unequal).
    const lit = this.constantValue(rn as Node) ?? this.constantValue(ln as Node);
    const litIsRight = this.constantValue(rn as Node) !== undefined;
    if (lit && (typeof lit.value === 'string' || typeof lit.value === 'boolean' || lit.value === null)) {
      const v = lit.value;
      const other = litIsRight ? l : r;
      // Both sides are evaluated as the interpreter does (an error on the other side is an error).
      return negate ? (e, c, rd) => other(e, c, rd) !== v : (e, c, rd) => other(e, c, rd) === v;
    }
    return negate ? (e, c, rd) => !celEquals(l(e, c, rd), r(e, c, rd)) : (e, c, rd) => celEquals(l(e, c, rd), r(e, c, rd));
  }

  private membership(n: Node, scope: Scope): EventFn | undefined {
    const [ln, rn] = n.args as Node[];
    const l = this.node(ln as Node, scope);
    if (!l) return undefined;
    const constant = this.constantValue(rn as Node);
    if (constant && Array.isArray(constant.value)) {
      const items = constant.value as readonly unknown[];
      // A list of strings and safe numbers: a set lookup is the same as CEL equality for a
      // primitive; any other value (a list, a map, a bigint) is compared item by item.
      if (items.every((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' || x === null)) {
        const set = new Set<unknown>(items);
        return (e, c, rd) => {
          const v = l(e, c, rd);
          if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') return listIncludes(items, v);
          return set.has(v);
        };
      }
      return (e, c, rd) => listIncludes(items, l(e, c, rd));
    }
    const r = this.node(rn as Node, scope);
    if (!r) return undefined;
    return (e, c, rd) => {
      const v = l(e, c, rd);
      return celIn(v, r(e, c, rd));
    };
  }

  private call(n: Node, scope: Scope): EventFn | undefined {
    const [name, argNodes] = n.args as [string, Node[]];
    if (n.meta?.macro) return name === 'has' && argNodes.length === 1 ? this.has(argNodes[0] as Node, scope) : undefined;
    const args = argNodes.map((a) => this.node(a, scope));
    if (args.some((a) => !a)) return undefined;
    const [a, b] = args as EventFn[];
    if (args.length === 1 && a) {
      switch (name) {
        case 'size':
          return (e, c, rd) => celSize(a(e, c, rd));
        case 'string':
          return (e, c, rd) => celString(a(e, c, rd));
        case 'int':
          return (e, c, rd) => celInt(a(e, c, rd));
        case 'dyn':
          return a;
        default:
          return undefined;
      }
    }
    if (args.length === 2 && a && b && name === 'inNetworks') {
      return (e, c, rd) => {
        const addr = a(e, c, rd);
        const nets = b(e, c, rd);
        return typeof addr === 'string' && Array.isArray(nets) ? inNetworks(addr, nets as string[]) : fail();
      };
    }
    return undefined;
  }

  /** has(x.f): the last field missing is false; a missing field before it is an error. */
  private has(arg: Node, scope: Scope): EventFn | undefined {
    const chain = fieldChain(arg);
    if (!chain) return undefined;
    const { name, keys } = chain;
    let first: EventFn;
    let rest = keys;
    if (!scope.has(name) && hasOwn(MESSAGES, name)) {
      const field = eventField(name, keys[0] as string);
      if (!field) return undefined;
      const read = field[0];
      if (keys.length === 1) return (e, c, rd) => read(e, c) !== undefined;
      first = messageField(read, field[1]);
      rest = keys.slice(1);
    } else {
      const id = this.identifier(name, scope);
      if (!id) return undefined;
      first = id;
    }
    if (rest.length === 1) {
      const k = rest[0] as string;
      return (e, c, rd) => fieldOrUndefined(first(e, c, rd), k) !== undefined;
    }
    return (e, c, rd) => {
      let obj = first(e, c, rd);
      for (let i = 0; i < rest.length; i++) {
        obj = fieldOrUndefined(obj, rest[i] as string);
        if (obj === undefined) {
          if (i < rest.length - 1) fail();
          return false;
        }
      }
      return true;
    };
  }

  private method(n: Node, scope: Scope): EventFn | undefined {
    const [name, recvNode, argNodes] = n.args as [string, Node, Node[]];
    if ((name === 'exists' || name === 'all') && n.meta?.alternate?.op === 'comprehension') return this.quantifier(name, recvNode, argNodes, scope);
    if (n.meta?.alternate || n.meta?.macro) return undefined;
    const recv = this.node(recvNode, scope);
    if (!recv) return undefined;
    if (name === 'size' && argNodes.length === 0) return (e, c, rd) => celSize(recv(e, c, rd));
    const method = hasOwn(STRING_METHODS, name) ? STRING_METHODS[name] : undefined;
    if (!method || argNodes.length !== 1) return undefined;
    const argNode = argNodes[0] as Node;
    const constant = this.constantValue(argNode);
    if (constant && typeof constant.value === 'string') {
      const lit = constant.value;
      if (name === 'matches') {
        const r = regex(lit);
        return (e, c, rd) => {
          const s = recv(e, c, rd);
          if (typeof s !== 'string') return fail();
          return r ? r.test(s) : fail();
        };
      }
      return (e, c, rd) => {
        const s = recv(e, c, rd);
        return typeof s === 'string' ? method(s, lit) : fail();
      };
    }
    const arg = this.node(argNode, scope);
    if (!arg) return undefined;
    return (e, c, rd) => {
      const s = recv(e, c, rd);
      const a = arg(e, c, rd);
      return typeof s === 'string' && typeof a === 'string' ? method(s, a) : fail();
    };
  }

  /** list.exists(x, p) and list.all(x, p), with the interpreter's treatment of an element's error. */
  private quantifier(name: string, recvNode: Node, argNodes: Node[], scope: Scope): EventFn | undefined {
    const [varNode, predNode] = argNodes;
    if (varNode?.op !== 'id' || !predNode) return undefined;
    const recv = this.node(recvNode, scope);
    if (!recv) return undefined;
    const slot = this.slots++;
    const inner = new Map(scope).set(varNode.args as string, slot);
    const pred = this.node(predNode, inner);
    if (!pred) return undefined;
    const frame = this.frame;
    const exists = name === 'exists';
    return (e, c, rd) => {
      const coll = recv(e, c, rd);
      const items = Array.isArray(coll) ? coll : isMap(coll) ? Object.keys(coll) : fail();
      let error = false;
      for (let i = 0; i < items.length; i++) {
        frame[slot] = items[i];
        let v: unknown;
        try {
          v = pred(e, c, rd);
        } catch {
          error = true;
          continue;
        }
        if (v === exists) return exists;
        if (v !== !exists) error = true; // not a bool: the interpreter's step fails
      }
      return error ? fail() : !exists;
    };
  }
}

// ---- Code generation -------------------------------------------------------------
// The same compiler, emitting the JavaScript source of one function per condition
// instead of a tree of closures: a tree of small closures calls through megamorphic call
// sites (every `&&` closure calls whatever closures its operands are), which costs more
// than the work itself; one generated function per condition is compiled by V8 as a
// whole, its helpers inlined. The source holds no text of the policy except literals
// written by JSON.stringify; values (lists, sets, regexes) are passed in, not written.
// Where the runtime forbids code generation from strings, the closure tree is used.

const HELPERS = {
  fail,
  ERR: CEL_ERROR,
  EMPTY,
  eq: celEquals,
  isArr: Array.isArray,
  isMap,
  keys: Object.keys,
  cStr: (v: unknown) => (typeof v === 'string' ? v : fail()),
  cBool: (v: unknown) => (typeof v === 'boolean' ? v : fail()),
  cInt: (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : fail()),
  cList: (v: unknown) => (Array.isArray(v) ? v : fail()),
  cMap: (v: unknown) => (isMap(v) ? v : fail()),
  sel: selectField,
  fld: fieldOrUndefined,
  hasPath: (obj: unknown, keys: readonly string[]): boolean => {
    for (let i = 0; i < keys.length; i++) {
      obj = fieldOrUndefined(obj, keys[i] as string);
      if (obj === undefined) {
        if (i < keys.length - 1) fail();
        return false;
      }
    }
    return true;
  },
  idx: (o: unknown, k: unknown): unknown => {
    if (Array.isArray(o)) {
      if (!isNum(k)) return fail();
      const v = o[Number(k)];
      return v === undefined ? fail() : v;
    }
    if (isMap(o) && hasOwn(o, k as PropertyKey)) {
      const v = o[k as string];
      if (v !== undefined) return v;
    }
    return fail();
  },
  not: (v: unknown) => (typeof v === 'boolean' ? !v : fail()),
  neg: (v: unknown) => (typeof v === 'number' ? -v : typeof v === 'bigint' ? normalInt(-v) : fail()),
  cond: (v: unknown) => (v === true ? true : v === false ? false : fail()),
  lt: (a: unknown, b: unknown) => compare('<', a, b),
  le: (a: unknown, b: unknown) => compare('<=', a, b),
  gt: (a: unknown, b: unknown) => compare('>', a, b),
  ge: (a: unknown, b: unknown) => compare('>=', a, b),
  inSet: (set: ReadonlySet<unknown>, items: readonly unknown[], v: unknown): boolean =>
    (typeof v === 'object' && v !== null) || typeof v === 'bigint' ? listIncludes(items, v) : set.has(v),
  inList: (items: readonly unknown[], v: unknown) => listIncludes(items, v),
  celIn,
  cat: (a: unknown, b: unknown) => (typeof a === 'string' && typeof b === 'string' ? a + b : fail()),
  mapLit: (entries: ReadonlyArray<readonly [unknown, unknown]>) => {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const key = String(k);
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
      obj[key] = v;
    }
    return obj;
  },
  size: celSize,
  toStr: celString,
  toInt: celInt,
  inNet: (addr: unknown, nets: unknown) => (typeof addr === 'string' && Array.isArray(nets) ? inNetworks(addr, nets as string[]) : fail()),
  sw: (s: unknown, a: unknown) => (typeof s === 'string' && typeof a === 'string' ? s.startsWith(a) : fail()),
  ew: (s: unknown, a: unknown) => (typeof s === 'string' && typeof a === 'string' ? s.endsWith(a) : fail()),
  ct: (s: unknown, a: unknown) => (typeof s === 'string' && typeof a === 'string' ? s.includes(a) : fail()),
  mt: (s: unknown, a: unknown) => (typeof s === 'string' && typeof a === 'string' ? STRING_METHODS['matches']!(s, a) : fail()),
  re: (r: RegExp | null, s: unknown) => (typeof s === 'string' ? (r ? r.test(s) : fail()) : fail()),
};

const METHOD_HELPER: Record<string, string> = { startsWith: 'sw', endsWith: 'ew', contains: 'ct', matches: 'mt' };

/** The event's fields as source text (activationOf's defaults included), unchecked. */
const TOP_SRC: Record<string, string> = {
  seq: 'e.seq', time: 'e.time', host: 'e.host', kind: 'e.kind', syscall: 'e.syscall', args: 'e.args', ret: 'e.ret', error: '(e.error ?? "")',
};
const DEFAULTED: Record<string, string> = { ancestors: 'EMPTY', stdio: 'EMPTY', entered: 'false', exeWritten: 'false', exeInImage: 'true', parentExe: '""', name: 'e.process.comm' };

const CHECK: Record<FieldType, string> = { string: 'cStr', bool: 'cBool', int: 'cInt', list: 'cList', map: 'cMap' };

function messageSource(message: string, field: string): string {
  if (message === 'container') return `c[${JSON.stringify(field)}]`;
  const raw = `e.${message}[${JSON.stringify(field)}]`;
  return message === 'process' && hasOwn(DEFAULTED, field) ? `(${raw} ?? ${DEFAULTED[field]})` : raw;
}

function literalSource(v: unknown, k: (x: unknown) => string): string | undefined {
  const lit = fromLiteral(v);
  if (!lit) return undefined;
  const x = lit.value;
  switch (typeof x) {
    case 'string':
      return JSON.stringify(x);
    case 'boolean':
      return String(x);
    case 'bigint':
      return `${x}n`;
    case 'number':
      if (Object.is(x, -0)) return '-0';
      return Number.isFinite(x) ? `(${String(x)})` : k(x);
    default:
      return x === null ? 'null' : k(x);
  }
}

class Generator {
  readonly consts: unknown[] = [];
  readonly decls: string[] = [];
  private count = 0;

  constructor(private readonly memo: MemoTable) {}

  private k(v: unknown): string {
    this.consts.push(v);
    return `K[${this.consts.length - 1}]`;
  }

  /** A function of the factory (e, c, rd in, the body's statements) and the call that evaluates it. */
  private fn(body: string): string {
    const name = `f${this.count++}`;
    this.decls.push(`function ${name}(e, c, rd) {\n${body}\n}`);
    return `${name}(e, c, rd)`;
  }

  expr(n: Node, scope: ReadonlyMap<string, string>): string | undefined {
    const x = this.build(n, scope);
    if (x === undefined || !MEMO_OPS.has(n.op) || (n.op === 'call' && n.meta?.macro) || readsAny(n, new Set(scope.keys()))) return x;
    const key = keyOf(n);
    const m = this.memo;
    let i = m.slots.get(key);
    if (i === undefined) {
      i = m.slots.size;
      m.slots.set(key, i);
      m.uses.push(0);
      m.rounds.push(0);
      m.values.push(undefined);
    }
    m.uses[i] = (m.uses[i] as number) + 1;
    const inner = this.fn(`return ${x};`);
    return this.fn([
      `if (U[${i}] < 2) return ${inner};`,
      `if (R[${i}] === rd) { const v = V[${i}]; return v === ERR ? fail() : v; }`,
      `let v; try { v = ${inner}; } catch (x) { V[${i}] = ERR; R[${i}] = rd; throw x; }`,
      `V[${i}] = v; R[${i}] = rd; return v;`,
    ].join('\n'));
  }

  private constantValue(n: Node): { value: unknown } | undefined {
    if (n.op === 'value') return fromLiteral(n.args);
    if (n.op === 'id' && n.meta?.alternate?.op === 'value') return fromLiteral(n.meta.alternate.args);
    if (n.op === 'list') {
      const items: unknown[] = [];
      for (const x of n.args as Node[]) {
        const v = this.constantValue(x);
        if (!v || (typeof v.value === 'object' && v.value !== null)) return undefined;
        items.push(v.value);
      }
      return { value: Object.freeze(items) };
    }
    return undefined;
  }

  private build(n: Node, scope: ReadonlyMap<string, string>): string | undefined {
    if (n.meta?.alternate && n.op !== 'rcall') {
      if (n.op === 'id' && n.meta.alternate.op === 'value') return literalSource(n.meta.alternate.args, (v) => this.k(v));
      return undefined;
    }
    const two = (): [string, string] | undefined => {
      const [ln, rn] = n.args as Node[];
      const l = this.expr(ln as Node, scope);
      const r = this.expr(rn as Node, scope);
      return l === undefined || r === undefined ? undefined : [l, r];
    };
    switch (n.op) {
      case 'value':
        return literalSource(n.args, (v) => this.k(v));
      case 'id': {
        const name = n.args as string;
        const v = scope.get(name);
        if (v !== undefined) return v;
        return hasOwn(TOP_SRC, name) ? TOP_SRC[name] : undefined;
      }
      case '.': {
        const [on, key] = n.args as [Node, string];
        if (on.op === 'id' && !scope.has(on.args as string) && hasOwn(MESSAGES, on.args as string)) {
          const field = eventField(on.args as string, key);
          return field ? `${CHECK[field[1]]}(${messageSource(on.args as string, key)})` : undefined;
        }
        const o = this.expr(on, scope);
        return o === undefined ? undefined : `sel(${o}, ${JSON.stringify(key)})`;
      }
      case '[]': {
        const lr = two();
        return lr && `idx(${lr[0]}, ${lr[1]})`;
      }
      case '&&':
      case '||': {
        const lr = two();
        if (!lr) return undefined;
        const [l, r] = lr;
        const and = n.op === '&&';
        return this.fn([
          `let a; try { a = ${l}; } catch { a = ERR; }`,
          `if (a === ${!and}) return ${!and};`,
          `const b = ${r};`,
          `if (a === ${and}) return typeof b === "boolean" ? b : fail();`,
          `return b === ${!and} ? ${!and} : fail();`,
        ].join('\n'));
      }
      case '!_': {
        const a = this.expr(n.args as Node, scope);
        return a === undefined ? undefined : `not(${a})`;
      }
      case '-_': {
        const a = this.expr(n.args as Node, scope);
        return a === undefined ? undefined : `neg(${a})`;
      }
      case '?:': {
        const [cn, ln, rn] = n.args as Node[];
        const c = this.expr(cn as Node, scope);
        const l = this.expr(ln as Node, scope);
        const r = this.expr(rn as Node, scope);
        return c === undefined || l === undefined || r === undefined ? undefined : `(cond(${c}) ? ${l} : ${r})`;
      }
      case '==':
      case '!=': {
        const [ln, rn] = n.args as Node[];
        const lr = two();
        if (!lr) return undefined;
        const rc = this.constantValue(rn as Node);
        const lc = rc ? undefined : this.constantValue(ln as Node);
        const lit = rc ?? lc;
        const op = n.op === '==' ? '===' : '!==';
        if (lit && (typeof lit.value === 'string' || typeof lit.value === 'boolean' || lit.value === null)) {
          return rc ? `(${lr[0]} ${op} ${lr[1]})` : `(${lr[1]} ${op} ${lr[0]})`;
        }
        return n.op === '==' ? `eq(${lr[0]}, ${lr[1]})` : `!eq(${lr[0]}, ${lr[1]})`;
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const lr = two();
        const name = { '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge' }[n.op];
        return lr && `${name}(${lr[0]}, ${lr[1]})`;
      }
      case 'in': {
        const [ln, rn] = n.args as Node[];
        const l = this.expr(ln as Node, scope);
        if (l === undefined) return undefined;
        const constant = this.constantValue(rn as Node);
        if (constant && Array.isArray(constant.value)) {
          const items = constant.value as readonly unknown[];
          if (items.every((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' || x === null)) {
            return `inSet(${this.k(new Set<unknown>(items))}, ${this.k(items)}, ${l})`;
          }
          return `inList(${this.k(items)}, ${l})`;
        }
        const r = this.expr(rn as Node, scope);
        return r === undefined ? undefined : `celIn(${l}, ${r})`;
      }
      case '+': {
        const [ln, rn] = n.args as Node[];
        // One side a checked string is enough: the checker then accepted only string + string
        // (a comprehension variable over a list<string> may carry no checked type of its own).
        if (ln?.checkedType?.name !== 'string' && rn?.checkedType?.name !== 'string') return undefined;
        const lr = two();
        return lr && `cat(${lr[0]}, ${lr[1]})`;
      }
      case 'list': {
        const constant = this.constantValue(n);
        if (constant) return this.k(constant.value);
        const items = (n.args as Node[]).map((x) => this.expr(x, scope));
        return items.some((x) => x === undefined) ? undefined : `[${items.join(', ')}]`;
      }
      case 'map': {
        const entries = (n.args as Array<[Node, Node]>).map(([kn, vn]) => [this.expr(kn, scope), this.expr(vn, scope)]);
        if (entries.some(([a, b]) => a === undefined || b === undefined)) return undefined;
        return `mapLit([${entries.map(([a, b]) => `[${a}, ${b}]`).join(', ')}])`;
      }
      case 'call':
        return this.call(n, scope);
      case 'rcall':
        return this.method(n, scope);
      default:
        return undefined;
    }
  }

  private call(n: Node, scope: ReadonlyMap<string, string>): string | undefined {
    const [name, argNodes] = n.args as [string, Node[]];
    if (n.meta?.macro) return name === 'has' && argNodes.length === 1 ? this.has(argNodes[0] as Node, scope) : undefined;
    const args = argNodes.map((a) => this.expr(a, scope));
    if (args.some((a) => a === undefined)) return undefined;
    if (args.length === 1) {
      const helper = ({ size: 'size', string: 'toStr', int: 'toInt', dyn: '' } as Record<string, string>)[name];
      if (helper === undefined) return undefined;
      return helper === '' ? args[0] : `${helper}(${args[0]})`;
    }
    if (args.length === 2 && name === 'inNetworks') return `inNet(${args[0]}, ${args[1]})`;
    return undefined;
  }

  private has(arg: Node, scope: ReadonlyMap<string, string>): string | undefined {
    const chain = fieldChain(arg);
    if (!chain) return undefined;
    const { name, keys } = chain;
    let first: string;
    let rest = keys;
    if (!scope.has(name) && hasOwn(MESSAGES, name)) {
      const field = eventField(name, keys[0] as string);
      if (!field) return undefined;
      const raw = messageSource(name, keys[0] as string);
      if (keys.length === 1) return `(${raw} !== undefined)`;
      first = `${CHECK[field[1]]}(${raw})`;
      rest = keys.slice(1);
    } else {
      const id = scope.get(name) ?? (hasOwn(TOP_SRC, name) ? TOP_SRC[name] : undefined);
      if (id === undefined) return undefined;
      first = id;
    }
    if (rest.length === 1) return `(fld(${first}, ${JSON.stringify(rest[0])}) !== undefined)`;
    return `hasPath(${first}, ${this.k(Object.freeze([...rest]))})`;
  }

  private method(n: Node, scope: ReadonlyMap<string, string>): string | undefined {
    const [name, recvNode, argNodes] = n.args as [string, Node, Node[]];
    if ((name === 'exists' || name === 'all') && n.meta?.alternate?.op === 'comprehension') return this.quantifier(name, recvNode, argNodes, scope);
    if (n.meta?.alternate || n.meta?.macro) return undefined;
    const recv = this.expr(recvNode, scope);
    if (recv === undefined) return undefined;
    if (name === 'size' && argNodes.length === 0) return `size(${recv})`;
    const helper = hasOwn(METHOD_HELPER, name) ? METHOD_HELPER[name] : undefined;
    if (!helper || argNodes.length !== 1) return undefined;
    const argNode = argNodes[0] as Node;
    const constant = this.constantValue(argNode);
    if (name === 'matches' && constant && typeof constant.value === 'string') return `re(${this.k(regex(constant.value))}, ${recv})`;
    const arg = this.expr(argNode, scope);
    return arg === undefined ? undefined : `${helper}(${recv}, ${arg})`;
  }

  private quantifier(name: string, recvNode: Node, argNodes: Node[], scope: ReadonlyMap<string, string>): string | undefined {
    const [varNode, predNode] = argNodes;
    if (varNode?.op !== 'id' || !predNode) return undefined;
    const recv = this.expr(recvNode, scope);
    if (recv === undefined) return undefined;
    const v = `x${this.count++}`;
    this.decls.push(`let ${v};`);
    const pred = this.expr(predNode, new Map(scope).set(varNode.args as string, v));
    if (pred === undefined) return undefined;
    const exists = name === 'exists';
    return this.fn([
      `const coll = ${recv};`,
      'const items = isArr(coll) ? coll : isMap(coll) ? keys(coll) : fail();',
      'let err = false;',
      'for (let i = 0; i < items.length; i++) {',
      `  ${v} = items[i];`,
      '  let p;',
      `  try { p = ${pred}; } catch { err = true; continue; }`,
      `  if (p === ${exists}) return ${exists};`,
      `  if (p !== ${!exists}) err = true;`,
      '}',
      `return err ? fail() : ${!exists};`,
    ].join('\n'));
  }

  /** The condition's function, made from the source written. */
  finish(root: string): EventFn {
    const names = Object.keys(HELPERS).join(', ');
    const source = `"use strict";\nconst { ${names} } = H;\n${this.decls.join('\n')}\nreturn function condition(e, c, rd) {\nreturn ${root};\n};`;
    const factory = new Function('H', 'K', 'U', 'R', 'V', source) as (...a: unknown[]) => EventFn;
    return factory(HELPERS, this.consts, this.memo.uses, this.memo.rounds, this.memo.values);
  }
}

const generated = new WeakSet<EventFn>();

/** Was this function generated as source (rather than built as a tree of closures)? */
export function isGenerated(fn: EventFn): boolean {
  return generated.has(fn);
}

/**
 * The closure of a checked condition's AST, or undefined when the AST holds a construct
 * this compiler does not handle (the caller then keeps the interpreter). Conditions
 * compiled for the same owner (the ConditionCompiler: one environment, one set of list
 * values) share their common subexpressions within an evaluation round (newRound()).
 */
export function compileClosure(ast: unknown, owner: object = {}): EventFn | undefined {
  if (!closureOptions.enabled) return undefined;
  let memo = memoTables.get(owner);
  if (!memo) memoTables.set(owner, (memo = { slots: new Map(), uses: [], rounds: [], values: [] }));
  if (closureOptions.generate) {
    try {
      const g = new Generator(memo);
      const root = g.expr(ast as Node, new Map());
      if (root === undefined) return undefined; // the closure tree supports nothing more
      const fn = g.finish(root);
      generated.add(fn);
      return fn;
    } catch {
      // No code generation from strings here (--disallow-code-generation-from-strings): closures.
    }
  }
  try {
    return new Compiler(memo).node(ast as Node, new Map());
  } catch {
    return undefined;
  }
}
