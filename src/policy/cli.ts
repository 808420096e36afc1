// `vigil policy`: check policy documents, replay a recorded event log through them, and
// list the rules in force. Problems are printed as `FILE:LINE:COL: message`, one a line,
// so editors and CI can jump to them.
import { createReadStream } from 'node:fs';
import { relative } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ContainerRef, Verdict, VigilEvent } from '../events/index.js';
import type { ContainerFacts } from './activation.js';
import { EVENT_KINDS } from './document.js';
import { PolicyError, formatProblem } from './errors.js';
import { loadPolicies, type LoadedPolicies } from './loader.js';
import type { RuleInfo } from './engine.js';
import { compileKernelRules, kernelReportLines } from './kernel-rules.js';

const USAGE = `usage: vigil policy <command> [options]

Checks policy documents (YAML, apiVersion vigil.dev/v1, kind Policy), replays a recorded
event log through them, and lists the rules in force. The default rule set is loaded
first, then every FILE or DIR given (a directory's *.yaml and *.yml files in name order),
as \`vigil agent --policy\` loads them.

commands:
  check FILE|DIR...            load the policies; print 'ok: N rules from M files', or every
                               problem as FILE:LINE:COL: message on stderr (exit 1)
  test FILE|DIR... --events F  replay a JSON-lines log (vigil agent --output jsonl:F) through
                               the rules; print each event whose verdict changes, then the
                               matches per rule
  list [FILE|DIR...]           the rules in force: name, policy, source, kinds, severity,
                               action, on/off, overrides

Run \`vigil policy <command> --help\` for the options of one command.
Exit codes: 0 done, 1 a policy has problems (or a file cannot be read), 2 bad usage.`;

const CHECK_USAGE = `usage: vigil policy check [--no-default-policy] FILE|DIR...

Loads vigil's default rule set and then every FILE or DIR given, compiles every condition,
and prints 'ok: N rules from M files'. When anything is wrong it prints every problem on
stderr as FILE:LINE:COL: message, one a line, and exits 1; nothing of a set with problems
would be used by the agent.

options:
  --no-default-policy   leave the default rule set out (check the files on their own)
  -h, --help            this text`;

const TEST_USAGE = `usage: vigil policy test [--no-default-policy] [--json] FILE|DIR... --events EVENTS.jsonl

Replays a recorded JSON-lines log (as vigil agent --output jsonl:PATH writes it; '-' reads
stdin) through the default rules and the policies given, in the log's order (so once and
threshold rules behave as in the agent). Prints every event whose verdict differs from the
one recorded in the log (seq, kind, syscall, process, container, old → new rules), then how
many events each rule matched. A line that is not an event is reported on stderr with its
line number and skipped. Container labels are those the log carries (container.labels), if any.

options:
  --events FILE         the recorded log (required)
  --no-default-policy   leave the default rule set out
  --json                one JSON object on stdout: {events, changed, rules, badLines}
  -h, --help            this text`;

const LIST_USAGE = `usage: vigil policy list [--no-default-policy] [--json] [FILE|DIR...]

The rules in force after loading the default rule set and every FILE or DIR given, in load
order: name, policy, source FILE:LINE, kinds, severity, action, on or off, and the overrides
that change it (FILE:LINE). An override whose policy has a selector changes the rule only
for the containers it selects: ON and the action shown are those of every other container.

options:
  --no-default-policy   leave the default rule set out
  --json                a JSON array of the rules instead of a table
  -h, --help            this text`;

class UsageError extends Error {}

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : s + '\n');

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    err(USAGE);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    out(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'check': return check(rest);
      case 'test': return await replay(rest);
      case 'list': return list(rest);
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`vigil policy: ${e.message}`);
      err(`Run 'vigil policy${command && ['check', 'test', 'list'].includes(command) ? ` ${command}` : ''} --help' for the options.`);
      return 2;
    }
    throw e;
  }
}

interface Parsed {
  paths: string[];
  defaults: boolean;
  json: boolean;
  events: string | undefined;
  help: boolean;
}

function parse(argv: string[], command: string, withJson: boolean, withEvents: boolean): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    'no-default-policy': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  if (withJson) options['json'] = { type: 'boolean' };
  if (withEvents) options['events'] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  return {
    paths: parsed.positionals,
    defaults: v['no-default-policy'] !== true,
    json: v['json'] === true,
    events: typeof v['events'] === 'string' ? v['events'] : undefined,
    help: v['help'] === true,
  };
}

/** Loads the set, or prints every problem (FILE:LINE:COL: message) and returns undefined. */
function load(paths: string[], defaults: boolean, facts?: (c: ContainerRef) => ContainerFacts | undefined): LoadedPolicies | undefined {
  try {
    return loadPolicies(paths, { defaults, facts });
  } catch (e) {
    if (e instanceof PolicyError) {
      for (const p of e.problems) err(formatProblem(p));
      return undefined;
    }
    throw e;
  }
}

function check(argv: string[]): number {
  const a = parse(argv, 'check', false, false);
  if (a.help) {
    out(CHECK_USAGE);
    return 0;
  }
  if (a.paths.length === 0 && !a.defaults) throw new UsageError('check: nothing to check (give FILE|DIR, or leave out --no-default-policy)');
  const loaded = load(a.paths, a.defaults);
  if (!loaded) return 1;
  out(`ok: ${loaded.set.size} rule${loaded.set.size === 1 ? '' : 's'} from ${loaded.files.length} file${loaded.files.length === 1 ? '' : 's'}`);
  return 0;
}

function list(argv: string[]): number {
  const a = parse(argv, 'list', true, false);
  if (a.help) {
    out(LIST_USAGE);
    return 0;
  }
  const loaded = load(a.paths, a.defaults);
  if (!loaded) return 1;
  const rules = loaded.set.list();
  if (a.json) {
    out(JSON.stringify(rules.map((r) => ({ name: r.name, policy: r.policy, file: r.file, line: r.line, source: `${r.file}:${r.line}`,
      kinds: r.kinds ?? null, severity: r.severity, action: r.action, enabled: r.enabled, overriddenBy: r.overriddenBy, tags: r.tags,
      description: r.description, syscalls: r.syscalls ?? null })), null, 2));
    return 0;
  }
  if (rules.length === 0) {
    out('no rules');
    return 0;
  }
  const rows = rules.map((r: RuleInfo) => [r.name, r.policy, `${shortPath(r.file)}:${r.line}`, r.kinds ? r.kinds.join(',') : '*', r.severity, r.action,
    r.enabled ? 'on' : 'off', r.overriddenBy.map((o) => shortPath(o)).join(', ') || '-']);
  out(table(['NAME', 'POLICY', 'SOURCE', 'KINDS', 'SEVERITY', 'ACTION', 'ON', 'OVERRIDDEN BY'], rows));
  const kernel = kernelReportLines(compileKernelRules(loaded.set));
  if (kernel.length > 0) out(`\nkill rules and the in-kernel kill (docs/respond.md):\n${kernel.join('\n')}`);
  return 0;
}

/** A path below the working directory as a relative one (the default rules' paths are long). */
function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') && !r.startsWith('/') ? r : p;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

interface Change {
  line: number;
  seq: number;
  kind: string;
  syscall: string;
  comm: string;
  container: string;
  old: Verdict;
  new: Verdict;
}

const NO_VERDICT: Verdict = { level: 'NORMAL', rules: [], action: 'none' };

function sameVerdict(a: Verdict, b: Verdict): boolean {
  if (a.level !== b.level || a.action !== b.action) return false;
  if (a.rules.length !== b.rules.length) return false;
  const sa = [...a.rules].sort();
  const sb = [...b.rules].sort();
  return sa.every((r, i) => r === sb[i]);
}

/** Why a parsed line is not an event the rules can judge, or undefined. */
function notAnEvent(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const e = v as Record<string, unknown>;
  if (!Number.isSafeInteger(e['seq'])) return 'seq must be a whole number';
  if (typeof e['kind'] !== 'string' || !(EVENT_KINDS as readonly string[]).includes(e['kind'])) return `kind must be one of ${EVENT_KINDS.join(', ')}`;
  if (typeof e['time'] !== 'string') return 'time must be a string';
  const c = e['container'];
  if (typeof c !== 'object' || c === null || typeof (c as Record<string, unknown>)['id'] !== 'string') return 'container must be an object with an id';
  const p = e['process'];
  if (typeof p !== 'object' || p === null) return 'process must be an object';
  for (const k of ['pid', 'nsPid', 'ppid', 'uid', 'gid']) {
    if (!Number.isSafeInteger((p as Record<string, unknown>)[k])) return `process.${k} must be a whole number`;
  }
  const n = e['namespaces'];
  if (typeof n !== 'object' || n === null || !Number.isSafeInteger((n as Record<string, unknown>)['mnt']) || !Number.isSafeInteger((n as Record<string, unknown>)['pid'])) {
    return 'namespaces must be an object with mnt and pid';
  }
  if (e['ret'] !== null && e['ret'] !== undefined && !Number.isSafeInteger(e['ret'])) return 'ret must be a whole number or null';
  if (typeof e['args'] !== 'object' || e['args'] === null) return 'args must be an object';
  return undefined;
}

async function replay(argv: string[]): Promise<number> {
  const a = parse(argv, 'test', true, true);
  if (a.help) {
    out(TEST_USAGE);
    return 0;
  }
  if (a.events === undefined) throw new UsageError('test: --events EVENTS.jsonl is required');
  if (a.paths.length === 0 && !a.defaults) throw new UsageError('test: no rules to test (give FILE|DIR, or leave out --no-default-policy)');
  // One frozen object per container, so the engine's per-container tables are built once
  // per container and not once per event (JSON.parse gives every line its own objects).
  const containers = new Map<string, ContainerRef>();
  const labels = new WeakMap<ContainerRef, ContainerFacts>();
  const intern = (c: Record<string, unknown>): ContainerRef => {
    const l = c['labels'];
    const key = `${String(c['id'])}\0${String(c['name'] ?? '')}\0${String(c['image'] ?? '')}\0${String(c['runtime'] ?? '')}\0${l === undefined ? '' : JSON.stringify(l)}`;
    let ref = containers.get(key);
    if (!ref) {
      ref = Object.freeze({ ...c, id: String(c['id']), name: String(c['name'] ?? ''), image: String(c['image'] ?? ''), runtime: String(c['runtime'] ?? '') }) as ContainerRef;
      if (typeof l === 'object' && l !== null) {
        const strings = Object.fromEntries(Object.entries(l as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
        labels.set(ref, { labels: Object.freeze(strings) });
      }
      containers.set(key, ref);
    }
    return ref;
  };
  const loaded = load(a.paths, a.defaults, (c) => labels.get(c));
  if (!loaded) return 1;
  const set = loaded.set;

  let input: NodeJS.ReadableStream;
  if (a.events === '-') input = process.stdin;
  else {
    const stream = createReadStream(a.events, { encoding: 'utf8' });
    const opened = await new Promise<Error | undefined>((resolveOpen) => {
      stream.once('open', () => resolveOpen(undefined));
      stream.once('error', (e) => resolveOpen(e));
    });
    if (opened) {
      err(`vigil policy test: cannot read ${a.events}: ${(opened as NodeJS.ErrnoException).code ?? opened.message}`);
      return 1;
    }
    input = stream;
  }
  const file = a.events === '-' ? '<stdin>' : a.events;
  const changed: Change[] = [];
  const badLines: Array<{ line: number; message: string }> = [];
  const matches = new Map<string, number>();
  const recorded = new Map<string, number>();
  for (const r of set.list()) matches.set(r.name, 0);
  let events = 0;
  let lineNo = 0;
  const bad = (message: string) => {
    badLines.push({ line: lineNo, message });
    err(`${file}:${lineNo}: ${message}; line skipped`);
  };
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const text of rl) {
      lineNo++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        bad(`not JSON (${(e as Error).message})`);
        continue;
      }
      const why = notAnEvent(value);
      if (why) {
        bad(`not an event: ${why}`);
        continue;
      }
      const e = value as VigilEvent;
      const old = isVerdict(e.verdict) ? e.verdict : NO_VERDICT;
      e.container = intern(e.container as unknown as Record<string, unknown>);
      let verdict: Verdict;
      try {
        verdict = set.judge(e);
      } catch (x) {
        bad(`cannot judge it (${(x as Error).message})`);
        continue;
      }
      events++;
      for (const r of verdict.rules) matches.set(r, (matches.get(r) ?? 0) + 1);
      for (const r of old.rules) recorded.set(r, (recorded.get(r) ?? 0) + 1);
      if (!sameVerdict(old, verdict)) {
        changed.push({ line: lineNo, seq: e.seq, kind: e.kind, syscall: e.syscall ?? '', comm: e.process.comm ?? '', container: e.container.name || e.container.id.slice(0, 12), old, new: verdict });
        if (!a.json) out(describeChange(changed[changed.length - 1] as Change));
      }
    }
  } catch (e) {
    err(`vigil policy test: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  const names = [...new Set([...matches.keys(), ...recorded.keys()])];
  if (a.json) {
    out(JSON.stringify({
      file,
      events,
      changed: changed.map((c) => ({ ...c, old: { ...c.old }, new: { ...c.new } })),
      rules: Object.fromEntries(names.map((n) => [n, { matches: matches.get(n) ?? 0, recorded: recorded.get(n) ?? 0, inForce: set.has(n) }])),
      badLines,
    }));
    return 0;
  }
  out(`${events} event${events === 1 ? '' : 's'} replayed from ${file}, ${changed.length} verdict${changed.length === 1 ? '' : 's'} changed${badLines.length ? `, ${badLines.length} bad line${badLines.length === 1 ? '' : 's'} skipped` : ''}`);
  const rows = names
    .filter((n) => (matches.get(n) ?? 0) > 0 || (recorded.get(n) ?? 0) > 0)
    .sort((x, y) => (matches.get(y) ?? 0) - (matches.get(x) ?? 0) || x.localeCompare(y))
    .map((n) => [n, String(matches.get(n) ?? 0), String(recorded.get(n) ?? 0), set.has(n) ? '' : 'not in force']);
  if (rows.length === 0) out('no rule matched');
  else out(table(['RULE', 'MATCHES', 'RECORDED', ''], rows));
  return 0;
}

function isVerdict(v: unknown): v is Verdict {
  return typeof v === 'object' && v !== null && typeof (v as Verdict).level === 'string' && Array.isArray((v as Verdict).rules) && typeof (v as Verdict).action === 'string';
}

function verdictText(v: Verdict): string {
  return `${v.level} [${v.rules.join(', ')}]${v.action !== 'none' ? ` ${v.action}` : ''}`;
}

function describeChange(c: Change): string {
  return `seq ${c.seq} ${c.kind}${c.syscall ? ` ${c.syscall}` : ''} ${c.comm} (${c.container || 'no container'}): ${verdictText(c.old)} → ${verdictText(c.new)}`;
}
