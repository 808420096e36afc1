// Conditions in CEL (@marcbachmann/cel-js): the environment declares the event exactly
// as the JSON log carries it, plus the lists of the loaded policies as constants; macros
// are expanded where they are named; every condition is parsed and type-checked once,
// at load, and an error points at its place in the YAML file.
import { Environment } from '@marcbachmann/cel-js';
import type { VigilEvent } from '../events/index.js';
import { activationOf } from './activation.js';
import { compileClosure, newRound } from './compile.js';
import type { CelSource } from './document.js';
import type { SourcePos } from './errors.js';

/** The event's top-level fields as CEL variables, with their types. */
export const EVENT_SCHEMA = {
  seq: 'int',
  time: 'string',
  host: 'string',
  kind: 'string',
  syscall: 'string',
  args: 'map<string, dyn>',
  ret: 'dyn', // int, or null for events without a return value (exit, lost)
  error: 'string', // '' when the call did not fail
  container: { id: 'string', name: 'string', image: 'string', runtime: 'string', labels: 'map<string, string>' },
  process: {
    pid: 'int', nsPid: 'int', ppid: 'int', parent: 'string', comm: 'string', exe: 'string', args: 'list<string>', argsTruncated: 'bool',
    uid: 'int', gid: 'int', caps: 'list<string>', containerSetup: 'bool',
    ancestors: 'list<string>', entered: 'bool', stdio: 'list<string>', exeWritten: 'bool', exeInImage: 'bool', parentExe: 'string', name: 'string',
  },
  namespaces: { mnt: 'int', pid: 'int', cgroupId: 'string', containerKey: 'string' },
} as const;

export const EVENT_VARIABLES = Object.keys(EVENT_SCHEMA);

export interface CelProblem {
  pos: SourcePos;
  message: string;
}

/** A node of the parsed expression, as far as the policy's analysis reads it. */
export interface CelNode {
  op: string;
  args: unknown;
  pos?: number;
}

export interface CompiledCondition {
  readonly source: CelSource;
  /** The expression after macro expansion. */
  readonly expanded: string;
  readonly ast: CelNode;
  /** True or false; a runtime error (a missing args key, say) counts as false and is counted. */
  evaluate(activation: Record<string, unknown>): boolean;
  /**
   * The same on the event itself (compile.ts); interpreted conditions build the activation
   * for it. Calls given the same round (newRound()) for the same event share the values of
   * common subexpressions; without one, each call is a round of its own.
   */
  evaluateEvent(e: VigilEvent, container: Record<string, unknown>, round?: number): boolean;
  /** True when evaluateEvent runs a compiled closure, and needs no activation. */
  readonly compiled: boolean;
}

type Evaluator = ((ctx: Record<string, unknown>) => unknown) & { ast: unknown; check(): { valid: boolean; type?: string; error?: Error & { node?: { pos?: number } } } };

interface Segment { expStart: number; expEnd: number; srcStart: number; macro?: string }

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * Replaces every macro named as an identifier (not a field after '.', not inside a
 * string literal, not a function name) by its expansion in parentheses.
 */
function expandMacros(text: string, expansions: ReadonlyMap<string, string>): { text: string; segments: Segment[] } {
  let out = '';
  const segments: Segment[] = [];
  let copiedFrom = 0;
  const flush = (to: number) => {
    if (to > copiedFrom) {
      segments.push({ expStart: out.length, expEnd: out.length + (to - copiedFrom), srcStart: copiedFrom });
      out += text.slice(copiedFrom, to);
    }
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"' || c === "'") {
      const triple = text.startsWith(c.repeat(3), i);
      const close = triple ? c.repeat(3) : c;
      let j = i + close.length;
      while (j < text.length && !text.startsWith(close, j)) j += text[j] === '\\' ? 2 : 1;
      i = j + close.length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      IDENT.lastIndex = i;
      const m = IDENT.exec(text);
      const word = (m as RegExpExecArray)[0];
      const end = i + word.length;
      let k = i - 1;
      while (k >= 0 && /\s/.test(text[k] as string)) k--;
      const afterDot = k >= 0 && text[k] === '.';
      let n = end;
      while (n < text.length && /\s/.test(text[n] as string)) n++;
      const isCall = text[n] === '(';
      // A string prefix (r"...", b"...") is not an identifier.
      const isPrefix = (word === 'r' || word === 'b' || word === 'R' || word === 'B' || word === 'rb' || word === 'br') && (text[end] === '"' || text[end] === "'");
      const expansion = expansions.get(word);
      if (expansion !== undefined && !afterDot && !isCall && !isPrefix) {
        flush(i);
        const rep = `(${expansion})`;
        segments.push({ expStart: out.length, expEnd: out.length + rep.length, srcStart: i, macro: word });
        out += rep;
        copiedFrom = end;
      }
      i = end;
      continue;
    }
    i++;
  }
  flush(text.length);
  return { text: out, segments };
}

/** What the library's errors carry of the node they are about. */
interface ErrorNode { pos?: number; start?: number; end?: number; op?: string; args?: unknown }

const INFIX = new Set(['==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', 'in', '&&', '||']);

/**
 * Where a type error points: the library gives a node's start, which for `a == 1` is `a`;
 * the token at fault is the operator (no overload of it takes these operands), and for
 * `x.startsWith(1)` the method's name.
 */
function offendingOffset(node: ErrorNode | undefined, text: string): number | undefined {
  if (!node) return undefined;
  const args = Array.isArray(node.args) ? (node.args as unknown[]) : [];
  const isNode = (n: unknown): n is ErrorNode => typeof n === 'object' && n !== null && typeof (n as ErrorNode).end === 'number';
  const after = (from: number, skip: RegExp): number => {
    let k = from;
    while (k < text.length && skip.test(text[k] as string)) k++;
    return k;
  };
  if (node.op !== undefined && INFIX.has(node.op) && args.length === 2 && isNode(args[0])) {
    // Past the left operand and any closing parentheses around it.
    const k = after(args[0].end as number, /[\s)]/);
    if (text.startsWith(node.op, k)) return k;
  }
  if (node.op === 'rcall' && isNode(args[1]) && typeof args[0] === 'string') {
    const k = after(args[1].end as number, /[\s)]/);
    if (text[k] === '.') {
      const m = after(k + 1, /\s/);
      if (text.startsWith(args[0], m)) return m;
    }
  }
  return node.pos;
}

function mapBack(segments: readonly Segment[], offset: number): { src: number; macro?: string } {
  for (const s of segments) {
    if (offset >= s.expStart && offset < s.expEnd) return s.macro ? { src: s.srcStart, macro: s.macro } : { src: s.srcStart + (offset - s.expStart) };
  }
  const last = segments[segments.length - 1];
  return { src: last ? last.srcStart + (last.expEnd - last.expStart) : 0 };
}

/** Rewords the library's messages where a policy author needs more than it says. */
function explain(message: string, lists: ReadonlySet<string>, brokenMacros: ReadonlySet<string> = new Set()): string {
  const first = message.split('\n')[0] as string;
  const unknownVar = /^Unknown variable: (\w+)/.exec(first);
  if (unknownVar) {
    const name = unknownVar[1] as string;
    if (brokenMacros.has(name)) return `macro '${name}' cannot be used: its own condition has an error (reported where the macro is defined)`;
    return `unknown name '${name}': not an event field (${EVENT_VARIABLES.join(', ')}), a list (${[...lists].join(', ') || 'none'}) or a macro`;
  }
  const noKey = /^No such key: (\w+)/.exec(first);
  if (noKey) return `unknown event field '${noKey[1]}'`;
  return first;
}

export class ConditionCompiler {
  private readonly env: Environment;
  private readonly expansions = new Map<string, string>();
  private readonly listNames: Set<string>;
  /** Macros whose own expression failed: a condition naming one is told so, not that the name is unknown. */
  private readonly brokenMacros = new Set<string>();
  readonly errors = new Map<CompiledCondition, number>();

  constructor(lists: ReadonlyMap<string, ReadonlyArray<string | number>>) {
    this.listNames = new Set(lists.keys());
    const env = new Environment({ homogeneousAggregateLiterals: false });
    env.registerFunction({
      signature: 'inNetworks(string, list<string>): bool',
      handler: (addr: unknown, nets: unknown) => inNetworks(String(addr), nets as string[]),
      description: 'Is the address (IPv4 or IPv6, with or without :port) inside one of the CIDR networks?',
    } as never);
    for (const [name, type] of Object.entries(EVENT_SCHEMA)) {
      if (typeof type === 'string') env.registerVariable(name, type);
      else env.registerVariable({ name, schema: type as unknown as Record<string, string> });
    }
    for (const [name, items] of lists) {
      if (Object.prototype.hasOwnProperty.call(EVENT_SCHEMA, name)) continue; // reported by the set
      const numeric = items.length > 0 && typeof items[0] === 'number';
      // CEL integers are BigInts; a list of whole numbers is a list<int>, compared with int fields.
      const value = numeric ? items.map((n) => (Number.isInteger(n) ? BigInt(n) : n)) : items;
      const type = numeric ? (items.every((n) => Number.isInteger(n)) ? 'list<int>' : 'list<double>') : 'list<string>';
      env.registerConstant(name, type, value as unknown[]);
    }
    this.env = env;
  }

  /** Declares a macro: its own expression is checked (as a bool) where it is written. */
  defineMacro(name: string, source: CelSource): CelProblem | undefined {
    const result = this.compileText(source, 'macro');
    if ('problem' in result) {
      this.brokenMacros.add(name);
      return result.problem;
    }
    this.brokenMacros.delete(name);
    this.expansions.set(name, result.expanded);
    return undefined;
  }

  /** A value expression (a rule's `once` key): any type, its string form is the key. */
  compileValue(source: CelSource): { source: CelSource; value(ctx: Record<string, unknown>): string } | CelProblem {
    const result = this.compileText(source, 'value');
    if ('problem' in result) return result.problem;
    const evaluator = result.evaluator;
    return {
      source,
      value: (ctx) => {
        try {
          return String(evaluator(ctx));
        } catch {
          return '';
        }
      },
    };
  }

  compile(source: CelSource): CompiledCondition | CelProblem {
    const result = this.compileText(source, 'condition');
    if ('problem' in result) return result.problem;
    const evaluator = result.evaluator;
    const closure = compileClosure(evaluator.ast, this);
    const compiled: CompiledCondition = {
      source,
      expanded: result.expanded,
      ast: evaluator.ast as CelNode,
      compiled: closure !== undefined,
      evaluate: (ctx) => {
        try {
          return evaluator(ctx) === true;
        } catch {
          this.errors.set(compiled, (this.errors.get(compiled) ?? 0) + 1);
          return false;
        }
      },
      evaluateEvent: closure
        ? (e, container, round = newRound()) => {
            try {
              return closure(e, container, round) === true;
            } catch {
              this.errors.set(compiled, (this.errors.get(compiled) ?? 0) + 1);
              return false;
            }
          }
        : (e, container) => compiled.evaluate(activationOf(e, container)),
    };
    return compiled;
  }

  private compileText(source: CelSource, what: string): { expanded: string; evaluator: Evaluator } | { problem: CelProblem } {
    const { text, segments } = expandMacros(source.text, this.expansions);
    const where = (offset: number | undefined, message: string): { problem: CelProblem } => {
      const back = mapBack(segments, offset ?? 0);
      return { problem: { pos: source.at(back.src), message: back.macro ? `${message} (in macro ${back.macro})` : message } };
    };
    let evaluator: Evaluator;
    try {
      evaluator = this.env.parse(text) as unknown as Evaluator;
    } catch (e) {
      const err = e as Error & { node?: ErrorNode };
      return where(err.node?.pos, `CEL syntax: ${explain(err.message, this.listNames, this.brokenMacros)}`);
    }
    const checked = evaluator.check();
    if (!checked.valid) {
      const err = checked.error as Error & { node?: ErrorNode };
      const kind = err.name === 'ParseError' ? 'CEL syntax' : 'CEL type';
      return where(offendingOffset(err.node, text), `${kind}: ${explain(err.message, this.listNames, this.brokenMacros)}`);
    }
    if (what === 'condition' && checked.type !== 'bool' && checked.type !== 'dyn') {
      return where(0, `a ${what} must be true or false, this one is of type ${checked.type}`);
    }
    return { expanded: text, evaluator };
  }
}

/** An address ("10.0.0.1", "10.0.0.1:80", "[::1]:80", "::1") as a bigint and its width, or undefined. */
function parseAddress(text: string): { value: bigint; bits: number } | undefined {
  let a = text.trim();
  if (a.startsWith('[')) a = a.slice(1, a.indexOf(']'));
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), bits: 32 };
  }
  if (!a.includes(':')) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return parseAddress(mapped[1] as string);
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  if (a.split('::').length > 2 || h.length + t.length > 8) return undefined;
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (tail === undefined && groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  return { value, bits: 128 };
}

/** A network as inNetworks reads it (an address, /prefix optional), or undefined for one it never matches. */
export function parseNetwork(net: string): { value: bigint; bits: number; prefix: number } | undefined {
  const [base, len] = net.split('/');
  const b = parseAddress(base ?? '');
  const prefix = len === undefined ? (b?.bits ?? 0) : Number(len);
  return b && Number.isInteger(prefix) && prefix >= 0 && prefix <= b.bits ? { ...b, prefix } : undefined;
}

const networkCache = new Map<string, { value: bigint; bits: number; prefix: number } | null>();

export function inNetworks(addr: string, nets: readonly string[]): boolean {
  const a = parseAddress(addr);
  if (!a) return false;
  for (const net of nets) {
    let n = networkCache.get(net);
    if (n === undefined) {
      n = parseNetwork(net) ?? null;
      networkCache.set(net, n);
    }
    if (!n || n.bits !== a.bits) continue;
    const shift = BigInt(a.bits - n.prefix);
    if (a.value >> shift === n.value >> shift) return true;
  }
  return false;
}
