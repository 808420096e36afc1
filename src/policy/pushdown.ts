// Pushdown: what the kernel must send for the loaded rules. Each rule's condition is read
// for the system calls it pins and the paths it names (string literals in ==, in,
// startsWith, endsWith, and lists used that way); the result is merged into the capture
// configuration the kernel maps are filled from. With every output limited to alerts,
// the kernel sends only what some rule can match; otherwise it sends what the capture
// configuration asks for plus whatever a rule names beyond it, so a path a rule
// judges reaches user space wherever it is.
import { SYSCALL_SPECS, type EventKind } from '../events/index.js';
import type { CelNode } from './cel.js';
import type { PolicySet } from './engine.js';

export interface CaptureNeeds {
  /** Capturable system calls some rule can match. */
  syscalls: Set<string>;
  /** Path prefixes (and exact paths, which watch their subtree too) rules name. */
  prefixes: Set<string>;
  suffixes: Set<string>;
  /** A rule judges opens on paths it does not name: every path must be sent. */
  allPaths: boolean;
  /** Rules whose needs could not be narrowed, with the reason (for `vigil policy list` and logs). */
  broad: Array<{ rule: string; reason: string }>;
}

const CATEGORY_OF_KIND: Partial<Record<EventKind, 'file' | 'process' | 'network'>> = { file: 'file', process: 'process', network: 'network' };
const OPEN_CALLS = new Set(Object.entries(SYSCALL_SPECS).filter(([, s]) => s.pathFilter).map(([n]) => n));

interface PathLiterals { prefixes: Set<string>; suffixes: Set<string> }

const PATH_FIELDS = new Set(['path', 'name', 'new_path', 'oldname', 'newname', 'linkpath', 'filename']);

/** Does an expression read a path argument of the event (args.path, args.name, ...)? */
function mentionsPath(n: unknown): boolean {
  const node = n as CelNode | undefined;
  if (!node || typeof node !== 'object') return false;
  if (node.op === '.' && Array.isArray(node.args)) {
    const [obj, field] = node.args as [CelNode, string];
    if (obj?.op === 'id' && obj.args === 'args' && PATH_FIELDS.has(field)) return true;
  }
  if (!Array.isArray(node.args)) return false;
  return (node.args as unknown[]).some((a) => (Array.isArray(a) ? a.some(mentionsPath) : mentionsPath(a)));
}

/**
 * Marks the kernel puts on a record whatever its path, and that the path filter does not
 * hide: a process's first compat call passes every filter (args.abi), and an open's
 * subject is the kernel's own path of the file, so an args_changed open the filter drops
 * was not of a watched file. A rule judging these needs no path sent for them.
 */
const KERNEL_MARKS = new Set(['abi', 'args_changed']);

function readsKernelMark(n: unknown): boolean {
  const node = n as CelNode | undefined;
  if (!node || typeof node !== 'object') return false;
  if (node.op === '.' && Array.isArray(node.args)) {
    const [obj, field] = node.args as [CelNode, string];
    if (obj?.op === 'id' && obj.args === 'args' && KERNEL_MARKS.has(field)) return true;
  }
  if (!Array.isArray(node.args)) return false;
  return (node.args as unknown[]).some((a) => (Array.isArray(a) ? a.some(readsKernelMark) : readsKernelMark(a)));
}

/** String literals of a condition that name paths, and how they are used. */
function pathLiterals(ast: CelNode, lists: ReadonlyMap<string, ReadonlyArray<string | number>>): PathLiterals {
  const out: PathLiterals = { prefixes: new Set(), suffixes: new Set() };
  const literal = (n: unknown): string | undefined => {
    const node = n as CelNode | undefined;
    return node?.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
  };
  const listItems = (n: unknown): string[] => {
    const node = n as CelNode | undefined;
    if (!node) return [];
    if (node.op === 'id' && typeof node.args === 'string') return (lists.get(node.args) ?? []).filter((x): x is string => typeof x === 'string');
    if (node.op === 'list' && Array.isArray(node.args)) return (node.args as CelNode[]).map(literal).filter((x): x is string => x !== undefined);
    return [];
  };
  const addPrefix = (s: string | undefined) => {
    if (s !== undefined && s.startsWith('/') && Buffer.byteLength(s) <= 255) out.prefixes.add(s);
  };
  const addSuffix = (s: string | undefined) => {
    if (s !== undefined && s.length > 1 && Buffer.byteLength(s) <= 255) out.suffixes.add(s);
  };
  const visit = (n: unknown): void => {
    const node = n as CelNode | undefined;
    if (!node || typeof node !== 'object') return;
    const args = node.args;
    if (node.op === 'rcall' && Array.isArray(args)) {
      const [method, receiver, params] = args as [string, CelNode, CelNode[]];
      if (method === 'startsWith' && mentionsPath(receiver)) addPrefix(literal(params[0]));
      if (method === 'endsWith' && mentionsPath(receiver)) addSuffix(literal(params[0]));
      // list.exists(v, X.startsWith(v)) / X.endsWith(v) / X == v
      if ((method === 'exists' || method === 'all' || method === 'exists_one') && params.length === 2) {
        const v = params[0]?.op === 'id' ? (params[0].args as string) : undefined;
        const body = params[1];
        const items = listItems(receiver);
        if (v && body?.op === 'rcall' && Array.isArray(body.args)) {
          const [m, recv, ps] = body.args as [string, CelNode, CelNode[]];
          const usesV = ps[0]?.op === 'id' && ps[0].args === v && mentionsPath(recv);
          if (usesV && m === 'startsWith') items.forEach(addPrefix);
          if (usesV && m === 'endsWith') items.forEach(addSuffix);
        }
      }
    }
    if ((node.op === '==' || node.op === '!=') && Array.isArray(args)) {
      if (mentionsPath(args[1])) addPrefix(literal(args[0]));
      if (mentionsPath(args[0])) addPrefix(literal(args[1]));
    }
    if (node.op === 'in' && Array.isArray(args) && mentionsPath(args[0])) listItems(args[1]).forEach(addPrefix);
    if (Array.isArray(args)) for (const a of args) Array.isArray(a) ? a.forEach(visit) : visit(a);
  };
  visit(ast);
  return out;
}

/** What the enabled rules of a policy set need the kernel to send. */
export function captureNeeds(set: PolicySet): CaptureNeeds {
  const needs: CaptureNeeds = { syscalls: new Set(), prefixes: new Set(), suffixes: new Set(), allPaths: false, broad: [] };
  const allKinds: EventKind[] = ['file', 'process', 'network'];
  for (const { info, ast, enabledSomewhere } of set.compiledRules()) {
    if (!enabledSomewhere) continue;
    const kinds = info.kinds ?? allKinds;
    const categories = new Set(kinds.map((k) => CATEGORY_OF_KIND[k]).filter((c): c is 'file' | 'process' | 'network' => c !== undefined));
    if (categories.size === 0) continue; // exec, fork, exit, capability, tcp, lost: not system-call records
    const pinned = info.syscalls ? new Set(info.syscalls) : undefined;
    const calls = Object.entries(SYSCALL_SPECS).filter(([name, spec]) => categories.has(spec.category) && (!pinned || pinned.has(name))).map(([n]) => n);
    for (const c of calls) needs.syscalls.add(c);
    if (!categories.has('file') || !calls.some((c) => OPEN_CALLS.has(c))) continue;
    const paths = pathLiterals(ast, set.lists);
    if (paths.prefixes.size === 0 && paths.suffixes.size === 0 && readsKernelMark(ast)) continue;
    if (paths.prefixes.size === 0 && paths.suffixes.size === 0) {
      needs.allPaths = true;
      needs.broad.push({ rule: info.name, reason: 'judges opens without naming a path: every path is sent' });
      continue;
    }
    for (const p of paths.prefixes) needs.prefixes.add(p);
    for (const s of paths.suffixes) needs.suffixes.add(s);
  }
  return needs;
}
