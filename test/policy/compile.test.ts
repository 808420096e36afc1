// The closure compiler (src/policy/compile.ts) against the interpreter it replaces: for
// every condition of the default rule set and a set of hand-written tricky expressions,
// on the recorded event mix (bench/policy/mix.jsonl.gz) and synthetic edge cases made
// from it, the compiled closure and the cel-js interpreter give the same result and the
// same evaluation errors. Real rules, real engine, no mocks; no timing anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { VigilEvent } from '../../src/events/index.js';
import { loadPolicies, type PolicySet } from '../../src/policy/index.js';
import { activationOf, containerView } from '../../src/policy/activation.js';
import { ConditionCompiler, type CompiledCondition } from '../../src/policy/cel.js';
import { closureOptions, compileClosure, isGenerated } from '../../src/policy/compile.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MIX = resolve(repo, 'bench', 'policy', 'mix.jsonl.gz');

function recorded(): VigilEvent[] {
  return gunzipSync(readFileSync(MIX)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as VigilEvent);
}

/** A small deterministic generator (mulberry32), so a failure names an event that comes back. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  '', 'x', '0', '3333', '-1', ' 1', '0x10', '99999999999999999999', '/etc/passwd', '/etc/shadow', '/proc/12/environ', '/proc/7/mem',
  '/root/.ssh/authorized_keys', '/etc/ld.so.preload', '/var/log/app.log', '/root/.bash_history', '/dev/null', '/usr/bin/x', '/etc/cron.d/j',
  '/var/run/docker.sock', '8.8.8.8:53', '[2001:db8::1]:443', '10.1.2.3:80', '::ffff:1.2.3.4', 'not an address', 'AF_INET', 'AF_INET6', 'AF_UNIX',
  '577(O_WRONLY|O_CREAT|O_TRUNC)', '524288(O_RDONLY|O_CLOEXEC)', '0(O_RDONLY)', '04755(S_ISUID)', '02755(S_ISGID)', 'CLONE_NEWNS|CLONE_NEWPID',
  'PTRACE_ATTACH', 'SYN_SENT', 'CLOSE', 'SYS_ADMIN', 'CHOWN', 'ECONNREFUSED', 'é☃𝄞', '[', '^(',
  0, 1, -1, 3, 3333, 4444, 3333.5, 1.5, -0, 2 ** 53 + 2, 1e21, true, false, null, [], ['a'], ['/etc/passwd', '-c'], ['stratum+tcp://pool:3333'],
];

const ARG_KEYS = ['path', 'name', 'new_path', 'flags', 'mode', 'addr', 'addr_family', 'port', 'granted', 'capability', 'request', 'target',
  'oldstate', 'newstate', 'uid', 'euid', 'ruid', 'fd', 'argv', 'lost', 'dirfd', 'cap'];

/** Synthetic edge cases: recorded events with args keys removed or retyped, odd process facts, missing enrichment. */
function synthetic(base: readonly VigilEvent[], count: number): VigilEvent[] {
  const r = rng(20261201);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const out: VigilEvent[] = [];
  for (let i = 0; i < count; i++) {
    const e = structuredClone(pick(base)) as unknown as { args: Record<string, unknown>; process: Record<string, unknown>; ret: number | null; error?: string; syscall: string; kind: string };
    const p = e.process;
    const mutations = 1 + Math.floor(r() * 4);
    for (let m = 0; m < mutations; m++) {
      switch (Math.floor(r() * 16)) {
        case 0: {
          const keys = Object.keys(e.args);
          if (keys.length > 0) delete e.args[pick(keys)];
          break;
        }
        case 1:
        case 2:
          e.args[pick(ARG_KEYS)] = pick(ODD_VALUES);
          break;
        case 3:
          p['comm'] = pick(['sh', 'bash', 'python3', 'nsenter', 'xmrig', 'apt-get', 'sshd', 'cat', 'nginx', 'dash']);
          break;
        case 4:
          p['parent'] = pick(['sh', 'tini', 'nginx', 'containerd-shim', 'bash', '']);
          break;
        case 5:
          p['stdio'] = pick([[], ['tty', 'tty', 'tty'], ['inet', 'inet', 'inet'], ['pipe', 'inet6', 'pipe'], ['none'], undefined]);
          break;
        case 6:
          p['uid'] = pick([0, 1000, 65534]);
          p['caps'] = pick([[], ['SYS_ADMIN'], ['CHOWN', 'NET_RAW']]);
          break;
        case 7:
          p['exe'] = pick(['/memfd:x', '/tmp/x', '/bin/ls (deleted)', '/dev/shm/a', '/usr/bin/python3', '']);
          break;
        case 8:
          p['entered'] = pick([true, false, undefined]);
          p['exeWritten'] = pick([true, false, undefined]);
          p['ancestors'] = pick([undefined, [], ['sh', 'tini']]);
          break;
        case 9:
          p['containerSetup'] = !p['containerSetup'];
          break;
        case 10:
          p['nsPid'] = pick([1, 7, 12, 4242]);
          break;
        case 11:
          p['args'] = pick([[], ['cat', '/etc/passwd'], ['grep', 'root', 'group'], ['x', 'stratum+ssl://h:1'], ['sh', '-c', 'é☃𝄞'], ['12', 'x', '-3']]);
          break;
        case 12:
          e.ret = pick([null, 0, -1, -111, 3, 2 ** 40]);
          break;
        case 13:
          if (r() < 0.5) delete e.error;
          else e.error = pick(['', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOENT']);
          break;
        case 14:
          e.syscall = pick(['openat', 'connect', 'setuid', 'ptrace', 'unshare', 'setns', 'mount', 'bpf', 'unlink', 'rename', 'symlink', 'truncate', 'chmod', 'finit_module', 'creat']);
          break;
        default:
          e.kind = pick(['exec', 'file', 'network', 'process', 'capability', 'tcp', 'lost']);
      }
    }
    out.push(e as unknown as VigilEvent);
  }
  return out;
}

const mix = recorded();
const events = [...mix, ...synthetic(mix, 3000)];
/** For the tricky expressions (many, most of them erring on most events: the interpreter's errors are slow): every other event. */
const someEvents = events.filter((_, i) => i % 2 === 0);

/** The two forms of the compiler: one generated function per condition, and the tree of closures it falls back to. */
const MODES = [{ name: 'generated', generate: true }, { name: 'closures', generate: false }] as const;

function loadWith(generate: boolean): PolicySet {
  closureOptions.generate = generate;
  try {
    return loadPolicies([]).set;
  } finally {
    closureOptions.generate = true;
  }
}

/** What one evaluation gave: its result and whether it counted an evaluation error. */
type Outcome = `${boolean}${'' | ' (error)'}`;

function outcomes(c: CompiledCondition, errors: () => number, e: VigilEvent): { interpreted: Outcome; compiled: Outcome } {
  const view = containerView(e.container, undefined);
  const e0 = errors();
  const a = c.evaluate(activationOf(e, view));
  const e1 = errors();
  const b = c.evaluateEvent(e, view);
  const e2 = errors();
  return { interpreted: `${a}${e1 > e0 ? ' (error)' : ''}`, compiled: `${b}${e2 > e1 ? ' (error)' : ''}` };
}

function describe(e: VigilEvent): string {
  return JSON.stringify({ kind: e.kind, syscall: e.syscall, args: e.args, ret: e.ret, error: e.error, process: e.process });
}

test('the recorded mix is a few thousand events of several kinds, with INSECURE ones among them', () => {
  assert.ok(mix.length >= 2000, `${mix.length} events`);
  const kinds = new Set(mix.map((e) => e.kind));
  for (const k of ['exec', 'file', 'network', 'process', 'capability', 'tcp']) assert.ok(kinds.has(k as VigilEvent['kind']), `no ${k} event in the mix`);
  assert.ok(mix.some((e) => e.verdict.level === 'INSECURE'));
});

test('every condition of the default rule set compiles, to a generated function', () => {
  const { set } = loadPolicies([]);
  const interpreted = set.conditions().filter((c) => !c.condition.compiled).map((c) => `${c.rule} (${c.what})`);
  assert.deepEqual(interpreted, []);
  for (const { rule, condition } of set.conditions()) {
    const fn = compileClosure(condition.ast, {});
    assert.ok(fn && isGenerated(fn), `${rule}: not generated`);
  }
});

for (const mode of MODES) test(`default rules (${mode.name}): compiled and interpreted conditions agree on the recorded mix and the synthetic edge cases`, () => {
  const set = loadWith(mode.generate);
  const conditions = set.conditions();
  assert.ok(conditions.length >= 29);
  const mismatches: string[] = [];
  let compared = 0;
  let errorsSeen = 0;
  let trues = 0;
  for (const { rule, what, condition } of conditions) {
    const errors = () => set.evalErrors()[rule] ?? 0;
    for (const e of events) {
      const o = outcomes(condition, errors, e);
      compared++;
      if (o.interpreted.includes('error')) errorsSeen++;
      if (o.interpreted.startsWith('true')) trues++;
      if (o.interpreted !== o.compiled && mismatches.length < 10) mismatches.push(`${rule} (${what}): interpreter ${o.interpreted}, closure ${o.compiled} on ${describe(e)}`);
    }
  }
  assert.deepEqual(mismatches, [], `${mismatches.length} mismatches of ${compared}`);
  // The comparison covered both outcomes and the error path.
  assert.ok(trues > 100, `${trues} true results`);
  assert.ok(errorsSeen > 0, 'no evaluation error met');
});

for (const mode of MODES) test(`the engine (${mode.name}) gives every event the same verdict with compiled conditions as with the interpreter alone`, () => {
  const compiled = loadWith(mode.generate);
  closureOptions.enabled = false;
  let interpreted: PolicySet;
  try {
    interpreted = loadPolicies([]).set;
  } finally {
    closureOptions.enabled = true;
  }
  assert.ok(compiled.conditions().every((c) => c.condition.compiled));
  assert.ok(interpreted.conditions().every((c) => !c.condition.compiled));
  const differ: string[] = [];
  for (const e of events) {
    const a = JSON.stringify(interpreted.judge(e));
    const b = JSON.stringify(compiled.judge(e));
    if (a !== b && differ.length < 10) differ.push(`interpreter ${a}, compiled ${b} on ${describe(e)}`);
  }
  assert.deepEqual(differ, []);
  assert.deepEqual(compiled.evalErrors(), interpreted.evalErrors());
  assert.equal(compiled.stats.insecure, interpreted.stats.insecure);
  assert.ok(compiled.stats.insecure > 0);
});

// Each must type-check; `compiled: false` marks constructs the compiler leaves to the interpreter.
const TRICKY: Array<{ text: string; compiled?: false }> = [
  // Errors on either side of && and ||, absorbed when the other side decides.
  { text: 'args.missing == 1 || true' }, { text: 'true || args.missing == 1' }, { text: 'args.missing == 1 || false' }, { text: 'false || args.missing == 1' },
  { text: 'args.missing == 1 && false' }, { text: 'false && args.missing == 1' }, { text: 'args.missing == 1 && true' }, { text: 'true && args.missing == 1' },
  { text: 'args.missing == 1 || args.other == 2' }, { text: 'args.missing == 1 && args.other == 2' },
  { text: 'args.path || true' }, { text: 'args.path && false' }, { text: 'true && args.path' }, { text: 'false || args.granted' },
  { text: '(args.missing == 1 || kind == "file") && (syscall == "openat" || args.x == 2)' },
  // has(), missing args keys, fields of fields.
  { text: 'has(args.path) && args.path.startsWith("/etc")' }, { text: 'has(args.path.x)' }, { text: 'has(args.missing.x)' }, { text: 'has(container.labels.app)' },
  { text: 'has(process.comm) && has(process.ancestors)' }, { text: '!has(args.granted) || args.granted' }, { text: 'args.path.x == 1' },
  { text: 'container.labels.app == "x"' }, { text: '"path" in args' }, { text: '"x" in args || "flags" in args' },
  // ints and doubles, ret null or int.
  { text: 'ret == 0' }, { text: 'ret == 0.0' }, { text: 'ret < 0' }, { text: 'ret == null' }, { text: 'ret != null && ret < 0' }, { text: 'ret > 1.5' },
  { text: 'args.fd == 3' }, { text: 'args.fd == 3.0' }, { text: 'args.fd < 4' }, { text: 'args.fd in [3, 4]' }, { text: 'args.fd in mining_pool_ports' },
  { text: 'int(args.fd) == 3' }, { text: 'string(args.fd) == "3"' }, { text: 'args.port in mining_pool_ports' }, { text: 'int(args.port) in mining_pool_ports' },
  { text: 'args.port >= 1024' }, { text: 'process.uid < 1.5' }, { text: '-process.uid < 0' }, { text: 'int(args.mode) > 0' }, { text: 'int(args.fd) == args.fd' },
  { text: 'args.fd == process.pid' }, { text: 'string(args.port) == "3333"' }, { text: 'args.path < "/m"' }, { text: 'args.path < 3' }, { text: 'args.granted < true' },
  { text: 'string(ret) == "0"' }, { text: 'int(ret) < 0' }, { text: 'string(args.granted) == "true"' }, { text: 'string(args.argv) == "x"' },
  // Ternaries.
  { text: 'process.uid == 0 ? kind == "exec" : kind == "file"' }, { text: '(has(args.flags) ? args.flags : 1) == 1' }, { text: 'args.flags ? true : false' },
  { text: 'args.granted ? args.capability == "SYS_ADMIN" : args.missing' }, { text: '(args.missing == 1 ? true : false) || true' },
  // Nulls.
  { text: 'args.target == null' }, { text: 'null == args.target' }, { text: 'args.target != null' }, { text: 'ret == args.target' },
  // ! and bools.
  { text: '!args.granted' }, { text: '!args.path' }, { text: 'args.granted == true' }, { text: 'args.granted != false' },
  { text: 'process.entered == false && process.exeWritten == false' }, { text: '!process.containerSetup && !process.argsTruncated' },
  // size(), string(), int().
  { text: 'size(process.args) > 1' }, { text: 'size(args) > 3' }, { text: 'size(process.comm) == 2' }, { text: 'process.comm.size() < 3' },
  { text: 'size(args.path) > 5' }, { text: 'size(args.fd) > 0' }, { text: 'size(process.ancestors) == 0' }, { text: 'size(args.argv) > 0' },
  // Lists, maps, indexes, exists/all with errors inside.
  { text: 'process.args.exists(a, a == "-c")' }, { text: 'process.args.all(a, size(a) > 0)' }, { text: 'args.argv.exists(a, a.startsWith("/"))' },
  { text: 'process.stdio.exists(s, s == "tty") || process.stdio[0] == "pipe"' }, { text: 'process.stdio[3] == "x"' }, { text: 'process.stdio[0] == "inet"' },
  { text: 'process.args.exists(a, int(a) > 0)' }, { text: 'process.args.all(a, int(a) > 0)' }, { text: 'process.args.exists(a, args.missing == a)' },
  { text: 'process.args.all(a, args.missing == a || true)' }, { text: 'process.args.exists(a, process.stdio.exists(s, s == a))' },
  { text: '[process.comm, process.parent].exists(x, x in shell_binaries)' }, { text: 'args.argv == process.args' }, { text: 'process.caps == []' },
  { text: 'args == {}' }, { text: 'args.path in {"/etc/passwd": 1, "/etc/group": 2}' }, { text: 'kind in {"exec": true}' }, { text: 'args.argv[0] == "cat"' },
  { text: 'args.fd in args.argv' }, { text: 'process.comm in process.ancestors' }, { text: 'args.path in args' }, { text: 'args.path in args.path' },
  { text: 'args.exists(k, k == "path")' }, { text: 'container.labels.exists(k, k == "app")' }, { text: 'args.argv.all(a, a != "")' },
  { text: 'args.path.exists(c, c == "x")' }, { text: '[1, "a", 2.5].exists(x, x == args.fd)' }, { text: '[[1], ["a"]].exists(x, x == args.argv)' },
  // Strings: methods, regexes, concatenation.
  { text: 'args.addr.matches("^127\\\\.")' }, { text: 'string(args.addr).matches("[")' }, { text: 'process.exe.matches(args.path)' },
  { text: 'args.mode.contains("S_ISUID")' }, { text: 'string(args.mode).contains(args.flags)' }, { text: 'args.dirfd.endsWith("(AT_FDCWD)")' },
  { text: 'args.new_path.startsWith("/") || args.path.startsWith("/")' }, { text: '("/proc/" + string(process.nsPid) + "/").startsWith("/proc/1/")' },
  { text: 'process.args.exists(a, ("/" + a).endsWith("/passwd"))' }, { text: 'args.fd.startsWith("3")' }, { text: 'process.comm.contains(args.fd)' },
  // inNetworks.
  { text: 'inNetworks(args.addr, allowed_networks)' }, { text: 'inNetworks(string(args.fd), ["10.0.0.0/8"])' }, { text: 'inNetworks(args.addr, args.argv)' },
  { text: 'has(args.addr) && !inNetworks(string(args.addr), allowed_networks)' },
  // The rest of the event.
  { text: 'seq > 0 && time != "" && host != ""' }, { text: 'namespaces.pid > 0 && namespaces.cgroupId != ""' }, { text: 'container.name.startsWith("vigil")' },
  { text: 'error == "" ? ret >= 0 : ret < 0' }, { text: 'dyn(args.fd) == 3' },
  // Left to the interpreter.
  { text: 'process.pid + 1 > 2', compiled: false }, { text: 'process.args.map(a, a + "x").size() > 0', compiled: false },
  { text: '[1, 2].exists_one(x, x == 1)', compiled: false }, { text: 'cel.bind(x, process.comm, x == "sh")', compiled: false },
  { text: 'double(process.pid) > 1.5', compiled: false }, { text: 'process.comm.lowerAscii() == "sh"', compiled: false },
  { text: 'args.fd * 2 == 6', compiled: false }, { text: 'b"abc" == b"abc"', compiled: false }, { text: 'process.args + ["x"] == ["x"]', compiled: false },
];

for (const mode of MODES) test(`tricky expressions (${mode.name}): compiled and interpreted agree on every event (and the unsupported ones fall back)`, () => {
  const { set } = loadPolicies([]);
  const compiler = new ConditionCompiler(set.lists);
  const pos = { file: 'tricky', line: 1, col: 1 };
  const mismatches: string[] = [];
  let errorsSeen = 0;
  for (const { text, compiled: expected } of TRICKY) {
    closureOptions.generate = mode.generate;
    let c;
    try {
      c = compiler.compile({ text, pos, at: () => pos });
    } finally {
      closureOptions.generate = true;
    }
    assert.ok(!('message' in c), `${text}: ${(c as { message?: string }).message}`);
    const cond = c as CompiledCondition;
    assert.equal(cond.compiled, expected ?? true, `${text}: compiled is ${cond.compiled}`);
    if (cond.compiled && mode.generate) assert.ok(isGenerated(compileClosure(cond.ast, {})!), `${text}: not generated`);
    for (const e of someEvents) {
      const o = outcomes(cond, () => compiler.errors.get(cond) ?? 0, e);
      if (o.interpreted.includes('error')) errorsSeen++;
      if (o.interpreted !== o.compiled && mismatches.length < 15) mismatches.push(`${text}: interpreter ${o.interpreted}, closure ${o.compiled} on ${describe(e)}`);
    }
  }
  assert.deepEqual(mismatches, []);
  assert.ok(errorsSeen > 1000);
});
