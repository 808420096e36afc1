// Kill rules compiled for the kernel (bpf/enforce.bpf.c). Each enabled rule whose action is
// `kill` somewhere has its condition (macros already expanded) turned into a disjunction of
// conjunctions of atoms; a conjunction holding an atom the kernel cannot evaluate is dropped
// whole. What is left implies the rule's condition: the kernel never kills what user space
// would not; what it cannot decide, user space still kills (src/respond), and says so.
//
// Rewrites: LIST.exists(s, E(s)) over a literal list is expanded by substitution, string
// concatenation of literals is folded ("-" + s), negation is pushed down to atoms and kept
// only on those the kernel decides exactly (process.containerSetup, comm, size(args), stdio).
import { OPEN_FLAGS, SYSCALL_SPECS, syscallNumber, type EventKind } from '../events/index.js';
import { STDIO_KIND } from '../events/layout.js';
import type { ContainerRef } from '../events/index.js';
import type { CelNode } from './cel.js';
import type { PolicySet } from './engine.js';
import type { ContainerFacts } from './activation.js';
import { parseNetwork } from './cel.js';

/** Limits of bpf/enforce.h. */
export const KERNEL_LIMITS = { clauses: 32, atoms: 8, rules: 32, stringBytes: 63, syscallNumbers: 512 } as const;

/** path: at an open's sys_exit, the opened fd's path (args.path); exe: at exec, process.exe whole. */
export type KernelStringField = 'comm' | 'exe_base' | 'arg0' | 'arg1' | 'path' | 'exe';
export type KernelAtom =
  | { type: 'setup'; negate: boolean }
  | { type: 'str'; field: KernelStringField; op: 'eq' | 'prefix' | 'suffix'; values: string[]; negate: boolean }
  | { type: 'argc_gt'; n: number; negate: boolean }
  | { type: 'stdio_any'; kinds: string[]; negate: boolean }
  | { type: 'stdio_at'; fd: number; kinds: string[]; negate: boolean }
  | { type: 'syscall'; names: string[] }
  // At sys_exit, on the kernel's objects; an atom about a fact the call lacks never holds, negated or not.
  | { type: 'port'; ports: number[]; negate: boolean }
  | { type: 'net'; networks: Array<{ bytes: number[]; prefix: number }>; text: string[]; negate: boolean }
  | { type: 'family'; families: Array<'AF_INET' | 'AF_INET6'>; negate: boolean }
  | { type: 'oflags'; bits: number; access: number[]; text: string; negate: boolean }
  | { type: 'failed' };

export interface KernelClause {
  /** Index into KernelProgram.rules. */
  rule: number;
  where: 'exec' | 'sys_enter' | 'sys_exit';
  atoms: KernelAtom[];
}

export interface KernelRuleReport {
  rule: string;
  /** full: every conjunction is the kernel's; partial: some; none: user space kills alone. */
  enforced: 'full' | 'partial' | 'none';
  /** The conjunctions the kernel evaluates, as text. */
  clauses: string[];
  /** Why the rest (or the whole rule) is left to user space. */
  reasons: string[];
}

export interface KernelProgram {
  /** Names of the kernel rules, by index (the kernel's kill_rule is index + 1). */
  rules: string[];
  clauses: KernelClause[];
  /** Rules on for every container whatever its identity (used before a container is resolved). */
  everywhere: string[];
  report: KernelRuleReport[];
}

/** A literal-free atom this compiler could not place, with the text of what it is. */
interface Unsupported { type: 'unsupported'; reason: string }
interface KindAtom { type: 'kind'; kinds: EventKind[]; negate: boolean }
/** syscall not in names: subtracted from the conjunction's listed calls when it is placed. */
interface NotSyscall { type: 'nsyscall'; names: string[] }
type Atom = KernelAtom | KindAtom | NotSyscall | Unsupported | { type: 'false' };
/**
 * Disjunction of conjunctions (c; [] is false, [[]] true), and u: why the disjuncts left out
 * were left out. A conjunction with an atom the kernel cannot evaluate is dropped as soon as
 * it is made (whatever it is later joined with, it stays undecidable), so the products stay small.
 */
interface Dnf { c: Atom[][]; u: string[] }

const TRUE: Dnf = { c: [[]], u: [] };
const FALSE: Dnf = { c: [], u: [] };
const one = (a: Atom): Dnf => (a.type === 'unsupported' ? { c: [], u: [a.reason] } : { c: [[a]], u: [] });
const union = (x: string[], y: string[]) => [...new Set([...x, ...y])];
const MAX_CONJUNCTIONS = 2048;
const STDIO_NAMES = new Set(Object.keys(STDIO_KIND).map((k) => k.toLowerCase()));

/** A short text of an expression, for reasons. */
export function renderCel(n: unknown): string {
  const node = n as CelNode | undefined;
  if (!node || typeof node !== 'object') return String(n);
  const a = node.args as unknown[];
  switch (node.op) {
    case 'id': return String(node.args);
    case 'value': return typeof node.args === 'string' ? JSON.stringify(node.args) : String(node.args);
    case '.': return `${renderCel(a[0])}.${String(a[1])}`;
    case '[]': return `${renderCel(a[0])}[${renderCel(a[1])}]`;
    case '!_': return `!${renderCel(node.args)}`;
    case '?:': return a.length === 3 ? `(${renderCel(a[0])} ? ${renderCel(a[1])} : ${renderCel(a[2])})` : node.op;
    case 'list': return `[${(node.args as unknown[]).map(renderCel).join(', ')}]`;
    case 'call': return `${String(a[0])}(${(a[1] as unknown[]).map(renderCel).join(', ')})`;
    case 'rcall': return `${renderCel(a[1])}.${String(a[0])}(${(a[2] as unknown[]).map(renderCel).join(', ')})`;
    default: return Array.isArray(a) && a.length === 2 ? `${renderCel(a[0])} ${node.op} ${renderCel(a[1])}` : node.op;
  }
}

type Term =
  | { t: 'lit'; v: string }
  | { t: 'num'; v: number }
  | { t: 'list'; v: string[] }
  | { t: 'nums'; v: number[] }
  | { t: 'field'; f: 'comm' | 'exe' | 'arg0' | 'arg1' | `stdio${number}` | 'kind' | 'syscall' | 'setup' | 'args' | 'stdio' | ArgField }
  | { t: 'other'; text: string };

/** Event arguments the kernel reads at sys_exit: args.path, args.port, args.addr, args.addr_family, args.flags. */
type ArgField = 'path' | 'port' | 'addr' | 'family' | 'flags';
const ARG_FIELDS: Readonly<Record<string, ArgField>> = { path: 'path', port: 'port', addr: 'addr', addr_family: 'family', flags: 'flags' };
/** The calls whose facts the exit program reads (bpf/enforce.bpf.c): an open's fd and flags, a connect's socket. */
const OPEN_CALLS = new Set(['open', 'openat', 'openat2', 'creat']);
const CONNECT_CALLS = new Set(['connect']);
const FILE_FACT = (a: Atom) => (a.type === 'str' && a.field === 'path') || a.type === 'oflags';
const SOCK_FACT = (a: Atom) => a.type === 'port' || a.type === 'net' || a.type === 'family';
const argName = (n: CelNode): string | undefined => {
  if (n.op !== '.' || !Array.isArray(n.args)) return undefined;
  const [obj, field] = n.args as [CelNode, unknown];
  return obj.op === 'id' && obj.args === 'args' && typeof field === 'string' ? field : undefined;
};
const hasArg = (n: CelNode): string | undefined => {
  if (n.op !== 'call' || !Array.isArray(n.args)) return undefined;
  const [name, params] = n.args as [string, CelNode[]];
  return name === 'has' && params.length === 1 ? argName(params[0] as CelNode) : undefined;
};

class Compiler {
  constructor(private readonly lists: ReadonlyMap<string, ReadonlyArray<string | number>>) {}

  term(n: CelNode, env: ReadonlyMap<string, string>): Term {
    const a = n.args as unknown[];
    if (n.op === 'value') {
      if (typeof n.args === 'string') return { t: 'lit', v: n.args };
      if (typeof n.args === 'bigint' || typeof n.args === 'number') return { t: 'num', v: Number(n.args) };
    }
    if (n.op === 'id') {
      const name = n.args as string;
      const bound = env.get(name);
      if (bound !== undefined) return { t: 'lit', v: bound };
      if (name === 'kind' || name === 'syscall') return { t: 'field', f: name };
      const list = this.lists.get(name);
      if (list && list.every((x): x is string => typeof x === 'string')) return { t: 'list', v: [...list] };
      if (list && list.every((x): x is number => typeof x === 'number')) return { t: 'nums', v: [...list] };
    }
    if (n.op === 'list' && Array.isArray(n.args)) {
      const items = (n.args as CelNode[]).map((x) => this.term(x, env));
      if (items.every((x): x is { t: 'lit'; v: string } => x.t === 'lit')) return { t: 'list', v: items.map((x) => x.v) };
      if (items.every((x): x is { t: 'num'; v: number } => x.t === 'num')) return { t: 'nums', v: items.map((x) => x.v) };
    }
    const arg = argName(n);
    if (arg !== undefined && ARG_FIELDS[arg]) return { t: 'field', f: ARG_FIELDS[arg] as ArgField };
    if (n.op === 'call' && Array.isArray(a)) {
      // string(args.X), int(args.X): the value as the record has it
      const [fn, params] = a as [string, CelNode[]];
      if ((fn === 'string' || fn === 'int') && params.length === 1) {
        const inner = this.term(params[0] as CelNode, env);
        if (inner.t === 'field' && (inner.f === 'port' ? fn === 'int' : fn === 'string')) return inner;
      }
    }
    if (n.op === '?:' && Array.isArray(a)) {
      // has(args.path) ? string(args.path) : ELSE (the file_path macro): the kernel reads args.path,
      // the fd's path, where the call has one; where it has not (a failed open) the atom never holds.
      const [cond, then] = a as [CelNode, CelNode];
      const t = this.term(then, env);
      if (hasArg(cond) === 'path' && t.t === 'field' && t.f === 'path') return t;
    }
    if (n.op === '+' && Array.isArray(a)) {
      const l = this.term(a[0] as CelNode, env);
      const r = this.term(a[1] as CelNode, env);
      if (l.t === 'lit' && r.t === 'lit') return { t: 'lit', v: l.v + r.v };
    }
    if (n.op === '.' && Array.isArray(a)) {
      const obj = a[0] as CelNode;
      if (obj.op === 'id' && obj.args === 'process') {
        const field = a[1] as string;
        if (field === 'comm' || field === 'exe' || field === 'args' || field === 'stdio') return { t: 'field', f: field };
        if (field === 'containerSetup') return { t: 'field', f: 'setup' };
      }
    }
    if (n.op === '[]' && Array.isArray(a)) {
      const base = this.term(a[0] as CelNode, env);
      const idx = this.term(a[1] as CelNode, env);
      if (base.t === 'field' && idx.t === 'num') {
        if (base.f === 'args' && (idx.v === 0 || idx.v === 1)) return { t: 'field', f: idx.v === 0 ? 'arg0' : 'arg1' };
        if (base.f === 'stdio' && idx.v >= 0 && idx.v <= 2) return { t: 'field', f: `stdio${idx.v}` };
      }
    }
    return { t: 'other', text: renderCel(n) };
  }

  /** The condition as a disjunction of conjunctions, negated when neg. */
  dnf(n: CelNode, neg: boolean, env: ReadonlyMap<string, string>): Dnf {
    const a = n.args as unknown[];
    switch (n.op) {
      case '&&': return neg ? this.or(this.dnf(a[0] as CelNode, true, env), this.dnf(a[1] as CelNode, true, env)) : this.and(this.dnf(a[0] as CelNode, false, env), this.dnf(a[1] as CelNode, false, env));
      case '||': return neg ? this.and(this.dnf(a[0] as CelNode, true, env), this.dnf(a[1] as CelNode, true, env)) : this.or(this.dnf(a[0] as CelNode, false, env), this.dnf(a[1] as CelNode, false, env));
      case '!_': return this.dnf(n.args as CelNode, !neg, env);
      case 'value':
        if (typeof n.args === 'boolean') return n.args !== neg ? TRUE : FALSE;
        break;
      case '==': case '!=':
        return this.compare(a[0] as CelNode, a[1] as CelNode, n.op === '!=' ? !neg : neg, env, n);
      case 'in':
        return this.member(a[0] as CelNode, this.term(a[1] as CelNode, env), neg, env, n);
      case '>': case '>=': {
        // size(process.args) > N: the kernel counts argv up to two.
        const l = a[0] as CelNode;
        const r = this.term(a[1] as CelNode, env);
        const call = l.op === 'call' ? (l.args as [string, CelNode[]]) : undefined;
        const ofArgs = call !== undefined && call[0] === 'size' && call[1].length === 1 && (() => {
          const t = this.term(call[1][0] as CelNode, env);
          return t.t === 'field' && t.f === 'args';
        })();
        if (ofArgs && r.t === 'num') {
          const gt = n.op === '>' ? r.v : r.v - 1;
          if (gt < 0) return neg ? FALSE : TRUE;
          if (gt <= 1) return one({ type: 'argc_gt', n: gt, negate: neg });
        }
        break;
      }
      case 'rcall': {
        const [method, receiver, params] = a as [string, CelNode, CelNode[]];
        if ((method === 'exists' || method === 'all') && params.length === 2 && params[0]?.op === 'id') {
          const v = params[0].args as string;
          const body = params[1] as CelNode;
          const recv = this.term(receiver, env);
          if (recv.t === 'list') {
            // Expanded by substitution: exists is the disjunction of the bodies, all the conjunction.
            const parts = recv.v.map((item) => new Map([...env, [v, item]]));
            const exists = method === 'exists';
            // !exists = all !body; !all = exists !body
            const asOr = exists !== neg;
            let out: Dnf = asOr ? FALSE : TRUE;
            for (const e2 of parts) {
              const d = this.dnf(body, neg, e2);
              out = asOr ? this.or(out, d) : this.and(out, d);
            }
            return out;
          }
          if (recv.t === 'field' && recv.f === 'stdio' && method === 'exists') {
            const kinds = this.equalityDisjunction(body, v);
            if (kinds && kinds.every((k) => STDIO_NAMES.has(k))) return one({ type: 'stdio_any', kinds, negate: neg });
          }
          break;
        }
        if ((method === 'endsWith' || method === 'startsWith') && params.length === 1) {
          const recv = this.term(receiver, env);
          const lit = this.term(params[0] as CelNode, env);
          if (recv.t === 'field' && lit.t === 'lit') return this.affix(recv.f, method, lit.v, neg, n);
        }
        if (method === 'contains' && params.length === 1) {
          const recv = this.term(receiver, env);
          const lit = this.term(params[0] as CelNode, env);
          if (recv.t === 'field' && recv.f === 'flags' && lit.t === 'lit') {
            const atom = openFlagsContaining(lit.v, neg);
            if (atom) return one(atom);
          }
        }
        break;
      }
      case 'call': {
        const [fn, params] = a as [string, CelNode[]];
        const has = hasArg(n);
        if (has === 'flags') {
          // Whether a call has flags is its kind's: open and openat2 have them, creat not.
          const names = Object.entries(SYSCALL_SPECS).filter(([, sp]) => sp.args.some(([x]) => x === 'flags') || sp.blob?.as === 'open_how').map(([x]) => x);
          return one(neg ? { type: 'nsyscall', names } : { type: 'syscall', names });
        }
        if (has === 'addr' || has === 'port' || has === 'addr_family') {
          // The kernel reads AF_INET and AF_INET6 sockets only: for them all three are there.
          return one({ type: 'family', families: ['AF_INET', 'AF_INET6'], negate: neg });
        }
        if (fn === 'inNetworks' && params.length === 2) {
          const addr = this.term(params[0] as CelNode, env);
          const nets = this.term(params[1] as CelNode, env);
          if (addr.t === 'field' && addr.f === 'addr' && nets.t === 'list') return one(networksAtom(nets.v, neg));
        }
        break;
      }
      case '.': {
        const t = this.term(n, env);
        if (t.t === 'field' && t.f === 'setup') return one({ type: 'setup', negate: neg });
        break;
      }
    }
    return one({ type: 'unsupported', reason: `${neg ? '!' : ''}${renderCel(n)}` });
  }

  /** v == "a" || v == "b" ... as ["a", "b"]. */
  private equalityDisjunction(n: CelNode, v: string): string[] | undefined {
    const a = n.args as unknown[];
    if (n.op === '||') {
      const l = this.equalityDisjunction(a[0] as CelNode, v);
      const r = this.equalityDisjunction(a[1] as CelNode, v);
      return l && r ? [...l, ...r] : undefined;
    }
    if (n.op === '==') {
      const [x, y] = a as [CelNode, CelNode];
      const isV = (c: CelNode) => c.op === 'id' && c.args === v;
      const lit = (c: CelNode) => (c.op === 'value' && typeof c.args === 'string' ? c.args : undefined);
      if (isV(x) && lit(y) !== undefined) return [lit(y) as string];
      if (isV(y) && lit(x) !== undefined) return [lit(x) as string];
    }
    return undefined;
  }

  private compare(x: CelNode, y: CelNode, neg: boolean, env: ReadonlyMap<string, string>, whole: CelNode): Dnf {
    let f = this.term(x, env);
    let l = this.term(y, env);
    if (f.t === 'lit') [f, l] = [l, f];
    if (f.t === 'num') [f, l] = [l, f];
    if (f.t === 'field' && l.t === 'lit') return this.member(undefined, { t: 'list', v: [l.v] }, neg, env, whole, f);
    if (f.t === 'field' && l.t === 'num') return this.member(undefined, { t: 'nums', v: [l.v] }, neg, env, whole, f);
    if (f.t === 'lit' && l.t === 'lit') return (f.v === l.v) !== neg ? TRUE : FALSE;
    return one({ type: 'unsupported', reason: `${neg ? '!' : ''}(${renderCel(whole)})` });
  }

  private member(x: CelNode | undefined, list: Term, neg: boolean, env: ReadonlyMap<string, string>, whole: CelNode, given?: Term): Dnf {
    const f = given ?? this.term(x as CelNode, env);
    const why = (extra = '') => one({ type: 'unsupported', reason: `${neg ? '!' : ''}(${renderCel(whole)})${extra}` });
    if (f.t === 'field' && f.f === 'port' && list.t === 'nums') {
      return one({ type: 'port', ports: list.v.filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535), negate: neg });
    }
    if (list.t !== 'list' || f.t !== 'field') {
      if (f.t === 'lit' && list.t === 'list') return list.v.includes(f.v) !== neg ? TRUE : FALSE;
      return why();
    }
    const values = list.v;
    switch (f.f) {
      case 'kind': return one({ type: 'kind', kinds: values as EventKind[], negate: neg });
      case 'syscall':
        // Negated, it narrows the conjunction's listed calls (placed alone, it is not decided).
        return one(neg ? { type: 'nsyscall', names: values } : { type: 'syscall', names: values });
      case 'comm':
        if (values.some((v) => Buffer.byteLength(v) > 15)) {
          // A comm is at most 15 bytes: a longer value never equals it.
          const fit = values.filter((v) => Buffer.byteLength(v) <= 15);
          return one({ type: 'str', field: 'comm', op: 'eq', values: fit, negate: neg });
        }
        return one({ type: 'str', field: 'comm', op: 'eq', values, negate: neg });
      case 'arg0': case 'arg1':
        if (neg) return why(': a negated argument test is not decided in the kernel (an argument too long to read)');
        return one({ type: 'str', field: f.f, op: 'eq', values: values.filter((v) => Buffer.byteLength(v) <= KERNEL_LIMITS.stringBytes), negate: false });
      case 'exe': case 'path': {
        // Compared whole: a listed value longer than the kernel's strings could never be told.
        const long = values.find((v) => Buffer.byteLength(v) > KERNEL_LIMITS.stringBytes);
        if (long !== undefined) return why(`: "${long}" is longer than ${KERNEL_LIMITS.stringBytes} bytes`);
        return one({ type: 'str', field: f.f, op: 'eq', values, negate: neg });
      }
      case 'family': {
        const families = values.filter((v): v is 'AF_INET' | 'AF_INET6' => v === 'AF_INET' || v === 'AF_INET6');
        return one({ type: 'family', families, negate: neg });
      }
      default:
        if (f.f.startsWith('stdio') && f.f !== 'stdio') {
          if (!values.every((v) => STDIO_NAMES.has(v))) return why();
          return one({ type: 'stdio_at', fd: Number(f.f.slice(5)), kinds: values, negate: neg });
        }
        return why();
    }
  }

  private affix(field: string, method: 'endsWith' | 'startsWith', lit: string, neg: boolean, whole: CelNode): Dnf {
    const why = (extra = '') => one({ type: 'unsupported', reason: `${neg ? '!' : ''}${renderCel(whole)}${extra}` });
    if (neg) return why(': a negated string test is not decided in the kernel');
    if (Buffer.byteLength(lit) > KERNEL_LIMITS.stringBytes) return why(`: longer than ${KERNEL_LIMITS.stringBytes} bytes`);
    const op = method === 'endsWith' ? 'suffix' : 'prefix';
    if (field === 'comm' || field === 'arg0' || field === 'arg1') return one({ type: 'str', field: field as KernelStringField, op, values: [lit], negate: false });
    if (field === 'exe' && method === 'endsWith') {
      // process.exe is an absolute path: ending with "/NAME" is having the file name NAME;
      // ending with "AME" (no '/') is a file name ending so. Both read the name alone, no walk.
      if (lit.startsWith('/') && !lit.slice(1).includes('/') && lit.length > 1) return one({ type: 'str', field: 'exe_base', op: 'eq', values: [lit.slice(1)], negate: false });
      if (!lit.includes('/') && lit.length > 0) return one({ type: 'str', field: 'exe_base', op: 'suffix', values: [lit], negate: false });
    }
    // The whole path, walked at the exec (exe) or from the opened fd (path).
    if (field === 'exe' || field === 'path') return one({ type: 'str', field, op, values: [lit], negate: false });
    return why();
  }

  and(x: Dnf, y: Dnf): Dnf {
    const u = (x.c.length + x.u.length > 0 && y.c.length + y.u.length > 0) ? union(x.u, y.u) : [];
    if (x.c.length * y.c.length > MAX_CONJUNCTIONS) return { c: [], u: union(u, [`more than ${MAX_CONJUNCTIONS} conjunctions`]) };
    const c: Atom[][] = [];
    for (const a of x.c) {
      for (const b of y.c) {
        if (!consistent(a, b)) continue;
        const seen = new Set(a.map((z) => JSON.stringify(z)));
        c.push([...a, ...b.filter((z) => !seen.has(JSON.stringify(z)))]);
      }
    }
    return { c: mergeClauses(c), u };
  }

  or(x: Dnf, y: Dnf): Dnf {
    return { c: mergeClauses([...x.c, ...y.c]), u: union(x.u, y.u) };
  }
}

/**
 * string(args.flags).contains(LIT) as flag bits: the record shows the flags as
 * "VALUE(ACCESS|NAME|...)" (events/constants.ts openFlags), so for LIT of capitals and '_'
 * (never in the number, nor across a '|') it holds when the access mode's name or a set
 * flag's name contains LIT.
 */
function openFlagsContaining(lit: string, negate: boolean): KernelAtom | undefined {
  if (!/^[A-Z_]+$/.test(lit)) return undefined;
  const access = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'].flatMap((name, mode) => (name.includes(lit) ? [mode] : []));
  let bits = 0;
  // The access bits are shown by the access mode's name only (openFlags drops them from the table's).
  for (const [bit, name] of OPEN_FLAGS) if ((bit & 3) === 0 && name.includes(lit)) bits |= bit;
  return { type: 'oflags', bits: bits >>> 0, access, text: lit, negate };
}

/** inNetworks(args.addr, NETS): networks inNetworks never matches are left out, as it leaves them. */
function networksAtom(nets: readonly string[], negate: boolean): KernelAtom {
  const networks: Array<{ bytes: number[]; prefix: number }> = [];
  for (const net of nets) {
    const n = parseNetwork(net);
    if (!n) continue;
    const bytes: number[] = [];
    const shift = BigInt(n.bits - n.prefix);
    const base = (n.value >> shift) << shift; // host bits clear
    for (let i = n.bits / 8 - 1; i >= 0; i--) bytes.push(Number((base >> BigInt(i * 8)) & 0xffn));
    networks.push({ bytes, prefix: n.prefix });
  }
  return { type: 'net', networks, text: [...nets], negate };
}

/** Two conjunctions can hold together (their kind atoms leave some kind). */
function consistent(a: Atom[], b: Atom[]): boolean {
  const kinds = [...a, ...b].filter((x): x is KindAtom => x.type === 'kind');
  if (kinds.length < 2) return true;
  const all: EventKind[] = ['exec', 'fork', 'exit', 'file', 'process', 'network', 'capability', 'tcp', 'io_uring', 'syscall', 'lost', 'response', 'agent'];
  return all.some((k) => kinds.every((x) => x.kinds.includes(k) !== x.negate));
}

const EXEC_ONLY = (a: Atom) => a.type === 'argc_gt' || a.type === 'stdio_any' || a.type === 'stdio_at' || (a.type === 'str' && a.field !== 'comm' && a.field !== 'path');
const EXIT_ONLY = (a: Atom) => FILE_FACT(a) || SOCK_FACT(a);

function atomKey(a: Atom): string {
  switch (a.type) {
    case 'str': return `str:${a.field}:${a.op}:${a.negate}`;
    case 'syscall': return 'syscall';
    default: return JSON.stringify(a);
  }
}

function atomText(a: KernelAtom): string {
  const not = 'negate' in a && a.negate ? '!' : '';
  switch (a.type) {
    case 'setup': return `${not}process.containerSetup`;
    case 'str': {
      const field = a.field === 'exe_base' ? 'exe file name' : a.field === 'comm' ? 'process.comm' : a.field === 'exe' ? 'process.exe'
        : a.field === 'path' ? 'opened path' : `process.args[${a.field.slice(3)}]`;
      const op = a.op === 'eq' ? 'in' : a.op === 'prefix' ? 'starts with one of' : 'ends with one of';
      return `${not}(${field} ${op} [${a.values.map((v) => JSON.stringify(v)).join(', ')}])`;
    }
    case 'argc_gt': return `${not}(size(process.args) > ${a.n})`;
    case 'stdio_any': return `${not}(a standard stream is ${a.kinds.join('|')})`;
    case 'stdio_at': return `${not}(process.stdio[${a.fd}] in [${a.kinds.join(', ')}])`;
    case 'syscall': return `syscall in [${a.names.join(', ')}]`;
    case 'port': return `${not}(remote port in [${a.ports.join(', ')}])`;
    case 'net': return `${not}inNetworks(remote address, [${a.text.join(', ')}])`;
    case 'family': return `${not}(socket family in [${a.families.join(', ')}])`;
    case 'oflags': return `${not}(flags contain ${a.text})`;
    case 'failed': return 'the call failed';
  }
}

/** Merges conjunctions that differ only in one positive set atom of the same shape (their values united). */
function mergeClauses<A extends Atom>(clauses: A[][]): A[][] {
  const canon = (c: A[]) => [...new Set(c.map((a) => JSON.stringify(a)))].sort();
  let changed = true;
  let out = clauses.map((c) => [...c]);
  while (changed) {
    changed = false;
    outer: for (let i = 0; i < out.length; i++) {
      for (let j = i + 1; j < out.length; j++) {
        const a = out[i] as A[];
        const b = out[j] as A[];
        const ka = canon(a);
        const kb = canon(b);
        if (ka.join('\n') === kb.join('\n')) {
          out.splice(j, 1);
          changed = true;
          break outer;
        }
        // Exactly one atom differs, and both are mergeable sets of the same key.
        const onlyA = a.filter((x) => !kb.includes(JSON.stringify(x)));
        const onlyB = b.filter((x) => !ka.includes(JSON.stringify(x)));
        if (onlyA.length !== 1 || onlyB.length !== 1) continue;
        const x = onlyA[0] as A;
        const y = onlyB[0] as A;
        if (atomKey(x) !== atomKey(y)) continue;
        let merged: Atom | undefined;
        if (x.type === 'str' && y.type === 'str' && !x.negate) merged = { ...x, values: [...new Set([...x.values, ...y.values])] };
        if (x.type === 'syscall' && y.type === 'syscall') merged = { type: 'syscall', names: [...new Set([...x.names, ...y.names])] };
        if (!merged) continue;
        out[i] = a.map((z) => (z === x ? (merged as A) : z));
        out.splice(j, 1);
        changed = true;
        break outer;
      }
    }
  }
  return out;
}

/** The categories (event kinds) a system call's records have. */
function syscallKind(name: string): EventKind | undefined {
  return SYSCALL_SPECS[name]?.category;
}

const FILTERED = 'only some of its calls become records (failed ones, or those a path or port filter passes), so the kernel cannot tell';

/** Places one conjunction: where the kernel evaluates it, or why it cannot. */
function place(conj: Atom[], ruleKinds: readonly EventKind[] | undefined): { clause?: { where: 'exec' | 'sys_enter' | 'sys_exit'; atoms: KernelAtom[] }; reason?: string; never?: true; partly?: string } {
  const bad = conj.find((a): a is Unsupported => a.type === 'unsupported');
  if (bad) return { reason: bad.reason };
  if (conj.some((a) => a.type === 'false')) return { never: true };
  // The kinds the conjunction can match: the rule's, narrowed by kind atoms.
  let kinds = new Set<EventKind>(ruleKinds ?? ['exec', 'fork', 'exit', 'file', 'process', 'network', 'capability', 'tcp', 'io_uring']);
  for (const a of conj) {
    if (a.type !== 'kind') continue;
    kinds = new Set([...kinds].filter((k) => a.kinds.includes(k) !== a.negate));
  }
  if (kinds.size === 0) return { never: true };
  const atoms = conj.filter((a): a is KernelAtom => a.type !== 'kind' && a.type !== 'false' && a.type !== 'unsupported' && a.type !== 'nsyscall');
  const notCalls = new Set(conj.flatMap((a) => (a.type === 'nsyscall' ? a.names : [])));
  const syscallAtoms = atoms.filter((a): a is Extract<KernelAtom, { type: 'syscall' }> => a.type === 'syscall');
  const empty = atoms.find((a) => a.type === 'str' && !a.negate && a.values.length === 0);
  if (empty) return { never: true };
  const atExit = atoms.some(EXIT_ONLY);
  if (syscallAtoms.length > 0) {
    if (atoms.some(EXEC_ONLY)) return { reason: 'tests the program (exe, argv, stdio) at a system call: only the exec is decided in the kernel' };
    // The intersection of the listed sets less the excluded, kept to calls whose records user
    // space judges as this rule's kinds, numbered in x86-64. At sys_enter only calls every one
    // of which becomes a record; at sys_exit (what the call opened or connected to) only calls
    // whose facts the kernel reads, a failed call where only failures are records, and the
    // record of a kill is kept whatever the path or port filter says.
    let names = new Set(syscallAtoms[0]!.names);
    for (const s of syscallAtoms.slice(1)) names = new Set([...names].filter((n) => s.names.includes(n)));
    const kept: string[] = [];
    const left: string[] = [];
    const reasons: string[] = [];
    let failedOnly: boolean | undefined;
    for (const n of names) {
      if (notCalls.has(n)) continue;
      if (n.startsWith('io_uring:')) {
        // An io_uring connect is decided on the socket at its active open (CLOSE -> SYN_SENT,
        // bpf/enforce.bpf.c vigil_enforce_tcp_open), which runs in the submitting task or its
        // io_uring worker. The clause names it by io_uring_enter, the call that submits it: the
        // sys_exit program finds no socket there, so no atom about one holds at that call.
        if (atExit && n === 'io_uring:connect' && atoms.some(SOCK_FACT) && !atoms.some(FILE_FACT) && failedOnly !== true) {
          failedOnly = false;
          kept.push('io_uring_enter');
          continue;
        }
        left.push(n);
        if (!reasons.includes('io_uring')) reasons.push('io_uring');
        continue;
      }
      const spec = SYSCALL_SPECS[n];
      const nr = syscallNumber(n);
      const kind = syscallKind(n);
      if (!spec || nr === undefined || nr >= KERNEL_LIMITS.syscallNumbers || !kind || !kinds.has(kind)) continue; // never an event of this rule
      if (atExit) {
        const facts = (atoms.some(FILE_FACT) ? OPEN_CALLS.has(n) : true) && (atoms.some(SOCK_FACT) ? CONNECT_CALLS.has(n) : true);
        if (!facts) {
          left.push(n);
          if (!reasons.includes('facts')) reasons.push('facts');
          continue;
        }
        const onError = spec.emit === 'on-error';
        if (failedOnly !== undefined && failedOnly !== onError) {
          // one clause tests the result or not: calls of the other sort go to user space
          left.push(n);
          if (!reasons.includes('mixed')) reasons.push('mixed');
          continue;
        }
        failedOnly = onError;
        kept.push(n);
      } else if (spec.emit === 'on-error' || spec.portFilter || spec.pathFilter) {
        left.push(n);
        if (!reasons.includes('filtered')) reasons.push('filtered');
      } else {
        kept.push(n);
      }
    }
    const why = reasons.map((r) => r === 'io_uring' ? `${left.filter((n) => n.startsWith('io_uring:')).join(', ')}: submitted through io_uring, not a system call the kernel program sees`
      : r === 'facts' ? `${left.filter((n) => !n.startsWith('io_uring:')).join(', ')}: the kernel reads what an open opened and what a connect connected to, not this call's arguments`
      : r === 'mixed' ? `${left.join(', ')}: reported on failure only, unlike the others of the conjunction`
      : `${left.join(', ')}: ${FILTERED}`).join('; ');
    if (kept.length === 0) return left.length > 0 ? { reason: why } : { never: true };
    const rest = atoms.filter((a) => a.type !== 'syscall');
    const where = atExit ? 'sys_exit' as const : 'sys_enter' as const;
    const extra: KernelAtom[] = atExit && failedOnly ? [{ type: 'failed' }] : [];
    const clause = { where, atoms: [{ type: 'syscall' as const, names: kept.sort() }, ...rest, ...extra] };
    if (left.length > 0) return { clause, partly: why };
    return { clause };
  }
  if (notCalls.size > 0) return { reason: 'excludes system calls without listing the ones it means: not decided in the kernel' };
  if (atExit) return { reason: 'tests what a call opened or connected to without naming the system call: not decided in the kernel' };
  if (!kinds.has('exec')) return { reason: `matches ${[...kinds].join('/')} events without naming a system call: not decided in the kernel` };
  if (kinds.size > 1) return { reason: 'does not say kind == "exec" and names no system call: not decided in the kernel' };
  return { clause: { where: 'exec', atoms } };
}

/** Compiles the kill rules of a policy set for the kernel. */
export function compileKernelRules(set: PolicySet): KernelProgram {
  const compiler = new Compiler(set.lists);
  const program: KernelProgram = { rules: [], clauses: [], everywhere: [], report: [] };
  for (const r of set.kernelView()) {
    if (!r.killSomewhere) continue;
    const report: KernelRuleReport = { rule: r.info.name, enforced: 'none', clauses: [], reasons: [] };
    program.report.push(report);
    if (r.exceptions > 0) {
      report.reasons.push('has exceptions: the kernel does not evaluate them');
      continue;
    }
    if (r.stateful) {
      report.reasons.push('counts matches (once, threshold): the kernel does not');
      continue;
    }
    const placed: Array<{ where: 'exec' | 'sys_enter' | 'sys_exit'; atoms: KernelAtom[] }> = [];
    let dropped = 0;
    const dnf = compiler.dnf(r.ast, false, new Map());
    for (const reason of dnf.u) if (!report.reasons.includes(reason)) report.reasons.push(reason);
    dropped += dnf.u.length;
    for (const conj of dnf.c) {
      const p = place(conj, r.info.kinds);
      if (p.never) continue;
      if (p.clause) {
        placed.push(p.clause);
        if (p.partly) {
          dropped++;
          if (!report.reasons.includes(p.partly)) report.reasons.push(p.partly);
        }
      } else {
        dropped++;
        if (p.reason && !report.reasons.includes(p.reason)) report.reasons.push(p.reason);
      }
    }
    const byWhere = (w: 'exec' | 'sys_enter' | 'sys_exit') => mergeClauses(placed.filter((c) => c.where === w).map((c) => c.atoms)).map((atoms) => ({ where: w, atoms }));
    let clauses = [...byWhere('exec'), ...byWhere('sys_enter'), ...byWhere('sys_exit')];
    const tooMany = clauses.find((c) => c.atoms.length > KERNEL_LIMITS.atoms);
    if (tooMany) {
      report.reasons.push(`a conjunction of ${tooMany.atoms.length} tests: the kernel takes ${KERNEL_LIMITS.atoms}`);
      dropped += clauses.filter((c) => c.atoms.length > KERNEL_LIMITS.atoms).length;
      clauses = clauses.filter((c) => c.atoms.length <= KERNEL_LIMITS.atoms);
    }
    if (clauses.length === 0) continue;
    if (program.rules.length >= KERNEL_LIMITS.rules || program.clauses.length + clauses.length > KERNEL_LIMITS.clauses) {
      report.reasons.push(`the kernel's room is used up (${KERNEL_LIMITS.rules} rules, ${KERNEL_LIMITS.clauses} conjunctions)`);
      continue;
    }
    const index = program.rules.length;
    program.rules.push(r.info.name);
    if (!r.scoped && r.info.action === 'kill' && r.info.enabled) program.everywhere.push(r.info.name);
    for (const c of clauses) {
      program.clauses.push({ rule: index, where: c.where, atoms: c.atoms });
      // At sys_exit, io_uring_enter stands for io_uring:connect (decided at the socket's active open).
      const shown = c.atoms.map((a) => c.where === 'sys_exit' && a.type === 'syscall' ? { ...a, names: a.names.map((n) => n === 'io_uring_enter' ? 'io_uring:connect' : n) } : a);
      report.clauses.push(`at ${c.where === 'exec' ? 'exec' : c.where}: ${shown.map(atomText).join(' && ') || 'true'}`);
    }
    report.enforced = dropped === 0 ? 'full' : 'partial';
  }
  return program;
}

/** Bit mask of the kernel rules on for one container: kill there, with no exception applying. 0 for a protected one. */
export function kernelMaskFor(program: KernelProgram, set: PolicySet, c: ContainerRef, isProtected: boolean): number {
  if (isProtected || program.rules.length === 0) return 0;
  const actions = set.actionsFor(c);
  let mask = 0;
  program.rules.forEach((name, i) => {
    const a = actions.get(name);
    if (a && a.action === 'kill' && a.exceptions === 0) mask |= 1 << i;
  });
  return mask >>> 0;
}

/** The mask for a container not resolved yet: the rules that are kill for every container. */
export function defaultKernelMask(program: KernelProgram): number {
  let mask = 0;
  program.rules.forEach((name, i) => {
    if (program.everywhere.includes(name)) mask |= 1 << i;
  });
  return mask >>> 0;
}

/** One line per kill rule for `vigil policy list`. */
export function kernelReportLines(program: KernelProgram): string[] {
  return program.report.map((r) => {
    const head = r.enforced === 'full' ? 'kernel kills: fully' : r.enforced === 'partial' ? 'kernel kills: partly' : 'kernel kills: no (user space kills)';
    const parts = [...r.clauses.map((c) => `  kernel ${c}`), ...r.reasons.map((x) => `  left to user space: ${x}`)];
    return [`${r.rule}: ${head}`, ...parts].join('\n');
  });
}

export type { ContainerFacts };
