// The rule engine's semantics on events shaped as the agent writes them: selectors and
// scoped overrides, list extension, macros, verdict aggregation, once and threshold, the
// kind and system-call index, and inNetworks. The kernel-side behaviour of each default
// rule is tested against real containers in rules-*.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerRef, VigilEvent } from '../../src/events/index.js';
import { PolicySet, readPolicyText, type PolicyProblem } from '../../src/policy/index.js';

function set(...texts: string[]): PolicySet {
  const problems: PolicyProblem[] = [];
  const docs = texts.flatMap((t, i) => readPolicyText(t, `p${i}.yaml`, problems));
  assert.deepEqual(problems, []);
  return PolicySet.build(docs, (c) => (c.name === 'labelled' ? { labels: { tier: 'web-frontend' } } : undefined));
}

const WEB: ContainerRef = Object.freeze({ id: 'a'.repeat(64), name: 'web-1', image: 'registry.example/web/nginx:1', runtime: 'docker' });
const DB: ContainerRef = Object.freeze({ id: 'b'.repeat(64), name: 'db-1', image: 'postgres:16', runtime: 'docker' });
const LABELLED: ContainerRef = Object.freeze({ id: 'c'.repeat(64), name: 'labelled', image: 'x', runtime: 'docker' });

let seq = 0;
function event(over: Partial<VigilEvent> & { comm?: string; container?: ContainerRef; pid?: number; timeMs?: number } = {}): VigilEvent {
  const { comm = 'sh', pid = 100, timeMs = 1_000_000, ...rest } = over;
  return {
    seq: ++seq,
    time: `${timeMs}000000`,
    host: 'h',
    kind: 'exec',
    syscall: 'execve',
    args: { filename: `/bin/${comm}`, argv: [comm] },
    ret: 0,
    container: WEB,
    process: {
      pid, nsPid: 5, ppid: 1, parent: 'nginx', comm, exe: `/bin/${comm}`, args: [comm], argsTruncated: false, uid: 0, gid: 0, caps: [],
      containerSetup: false, ancestors: ['nginx'], entered: false, stdio: ['pipe', 'pipe', 'pipe'], exeWritten: false, exeInImage: true, parentExe: '/usr/sbin/nginx', name: comm,
    },
    namespaces: { mnt: 1, pid: 2, cgroupId: '3', containerKey: '4' },
    verdict: { level: 'NORMAL', rules: [], action: 'none' },
    ...rest,
  };
}

const SHELLS = `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: shells}
spec:
  selector: {image: "registry.example/web/*"}
  rules:
  - name: execve shell
    kinds: [exec]
    condition: process.comm in shells && !process.containerSetup && process.parent != "bash"
    severity: high
    tags: [T1059]
    action: alert
  lists:
    shells: [sh, bash, dash, ash, zsh]
`;

test("the README's example policy: a shell in a matching image is INSECURE, elsewhere or from bash NORMAL", () => {
  const s = set(SHELLS);
  assert.deepEqual(s.judge(event()), { level: 'INSECURE', rules: ['execve shell'], action: 'alert', severity: 'high' });
  assert.equal(s.judge(event({ container: DB })).level, 'NORMAL', 'the selector leaves other images out');
  assert.equal(s.judge(event({ comm: 'ls' })).level, 'NORMAL');
  const fromBash = event();
  fromBash.process = { ...fromBash.process, parent: 'bash' };
  assert.equal(s.judge(fromBash).level, 'NORMAL');
});

test('lists are extended by later files; an override scoped by selector changes a rule for those containers only', () => {
  const s = set(SHELLS, `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: more}
spec:
  lists:
    shells: {append: [fish]}
`, `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: quiet-web-1}
spec:
  selector: {name: "web-1"}
  overrides:
  - rule: execve shell
    exceptions: ['process.comm == "dash"']
    action: kill
`);
  assert.equal(s.judge(event({ comm: 'fish' })).level, 'INSECURE', 'appended item');
  assert.equal(s.judge(event({ comm: 'dash' })).level, 'NORMAL', 'the override adds an exception for web-1');
  const web2: ContainerRef = Object.freeze({ ...WEB, id: 'd'.repeat(64), name: 'web-2' });
  assert.equal(s.judge(event({ comm: 'dash', container: web2 })).level, 'INSECURE', 'web-2 is not selected by the override');
  assert.equal(s.judge(event({ comm: 'sh' })).action, 'kill');
  assert.equal(s.judge(event({ comm: 'sh', container: web2 })).action, 'alert');
  const info = s.list().find((r) => r.name === 'execve shell');
  assert.deepEqual(info?.overriddenBy, ['p2.yaml:7']);
});

test('a rule disabled by an override for every container is off; labels select', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: base}
spec:
  rules:
  - name: any exec
    kinds: [exec]
    condition: kind == "exec"
`, `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: off-for-web}
spec:
  selector: {labels: {tier: "web-*"}}
  overrides:
  - rule: any exec
    enabled: false
`);
  assert.equal(s.judge(event({ container: LABELLED })).level, 'NORMAL');
  assert.equal(s.judge(event({ container: DB })).level, 'INSECURE');
});

test('verdicts: every matching rule named, the strongest action, INSECURE unless every match is a log rule', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: levels}
spec:
  macros:
    is_sh: process.comm == "sh"
  rules:
  - name: audit sh
    kinds: [exec]
    condition: is_sh
    action: log
  - name: low sh
    kinds: [exec]
    condition: is_sh && process.uid == 0
    severity: low
  - name: critical sh
    kinds: [exec]
    condition: is_sh && "inet" in process.stdio
    severity: critical
    action: stop
`);
  assert.deepEqual(s.judge(event({ comm: 'ls' })), { level: 'NORMAL', rules: [], action: 'none' });
  const logged = event();
  logged.process = { ...logged.process, uid: 1000 };
  assert.deepEqual(s.judge(logged), { level: 'NORMAL', rules: ['audit sh'], action: 'log' });
  assert.deepEqual(s.judge(event()), { level: 'INSECURE', rules: ['audit sh', 'low sh'], action: 'alert', severity: 'low' });
  const reverse = event();
  reverse.process = { ...reverse.process, stdio: ['inet', 'inet', 'pipe'] };
  assert.deepEqual(s.judge(reverse), { level: 'INSECURE', rules: ['audit sh', 'low sh', 'critical sh'], action: 'stop', severity: 'critical' });
});

test('once: one alert per container and key; threshold: count matches within the window per process', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: stateful}
spec:
  rules:
  - name: cap once
    kinds: [capability]
    condition: args.granted == true
    once: string(args.capability)
  - name: refused burst
    kinds: [network]
    condition: error == "ECONNREFUSED"
    threshold: {count: 3, seconds: 10}
`);
  const cap = (capability: string, container = WEB) => event({ kind: 'capability', syscall: 'capable', args: { capability, granted: true }, container });
  assert.equal(s.judge(cap('SYS_ADMIN')).level, 'INSECURE');
  assert.equal(s.judge(cap('SYS_ADMIN')).level, 'NORMAL', 'the same capability again in the same container');
  assert.equal(s.judge(cap('NET_ADMIN')).level, 'INSECURE');
  assert.equal(s.judge(cap('SYS_ADMIN', DB)).level, 'INSECURE', 'another container');
  const refused = (timeMs: number, pid = 7) => event({ kind: 'network', syscall: 'connect', args: {}, ret: -111, error: 'ECONNREFUSED', timeMs, pid });
  assert.equal(s.judge(refused(1000)).level, 'NORMAL');
  assert.equal(s.judge(refused(2000)).level, 'NORMAL');
  assert.equal(s.judge(refused(2500, 8)).level, 'NORMAL', 'another process has its own window');
  assert.equal(s.judge(refused(3000)).level, 'INSECURE', 'the third within 10 s');
  assert.equal(s.judge(refused(30_000)).level, 'NORMAL', 'the window starts again');
  assert.equal(s.judge(refused(60_000)).level, 'NORMAL');
  assert.equal(s.judge(refused(80_000)).level, 'NORMAL', 'three matches, but not within 10 s');
});

test('threshold per container: matches of different processes count together', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: per-container}
spec:
  rules:
  - name: refused anywhere
    kinds: [network]
    condition: error == "ECONNREFUSED"
    threshold: {count: 3, seconds: 10, per: container}
`);
  const refused = (pid: number, container = WEB) => event({ kind: 'network', syscall: 'connect', args: {}, ret: -111, error: 'ECONNREFUSED', timeMs: 5000 + pid, pid, container });
  assert.equal(s.judge(refused(1)).level, 'NORMAL');
  assert.equal(s.judge(refused(2)).level, 'NORMAL');
  assert.equal(s.judge(refused(3, DB)).level, 'NORMAL', 'another container counts apart');
  assert.equal(s.judge(refused(4)).level, 'INSECURE', 'the third of the container, from a third process');
});

test('rules are indexed by kind and pinned system call; a condition reading a missing field is false and counted', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: index}
spec:
  lists:
    opens: [open, openat]
  rules:
  - name: opens of etc
    kinds: [file]
    condition: syscall in opens && args.path.startsWith("/etc/")
  - name: reads a missing key
    kinds: [file]
    condition: args.nosuchkey == "x"
`);
  const info = s.list().find((r) => r.name === 'opens of etc');
  assert.deepEqual(info?.syscalls, ['open', 'openat']);
  const file = event({ kind: 'file', syscall: 'openat', args: { path: '/etc/shadow' } });
  assert.deepEqual(s.judge(file).rules, ['opens of etc']);
  assert.equal(s.judge(event({ kind: 'file', syscall: 'unlink', args: { path: '/etc/shadow' } })).level, 'NORMAL');
  assert.equal(s.evalErrors()['reads a missing key'], 2);
});

test('inNetworks: IPv4 and IPv6, with and without ports, CIDR prefixes', () => {
  const s = set(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: nets}
spec:
  lists:
    inside: [10.0.0.0/8, 192.168.1.0/24, "fd00::/8", "::1/128"]
  rules:
  - name: outside
    kinds: [network]
    condition: has(args.addr) && !inNetworks(string(args.addr), inside)
`);
  const to = (addr: string) => s.judge(event({ kind: 'network', syscall: 'connect', args: { addr } })).level;
  assert.equal(to('10.1.2.3:80'), 'NORMAL');
  assert.equal(to('192.168.1.200'), 'NORMAL');
  assert.equal(to('192.168.2.1:443'), 'INSECURE');
  assert.equal(to('[fd12:3456::1]:8080'), 'NORMAL');
  assert.equal(to('[::1]:22'), 'NORMAL');
  assert.equal(to('[2001:db8::1]:22'), 'INSECURE');
  assert.equal(to('not-an-address'), 'INSECURE', 'what cannot be parsed is not inside');
});
