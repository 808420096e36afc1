// The kill rules' compiler for the kernel (src/policy/kernel-rules.ts) on the real default
// policy and on small ones: which conjunctions the kernel gets, why the rest are left to user
// space, and the one property that matters: whenever a kernel clause holds for an event, the
// rule's own verdict (the engine's judge) is kill. The kernel side is run for real in
// test/respond/kernel-kill.test.ts; here the clauses are evaluated as bpf/enforce.bpf.c does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerRef, StdioKind, VigilEvent } from '../../src/events/index.js';
import { compileKernelRules, defaultKernelMask, kernelMaskFor, kernelReportLines, loadPolicies, PolicySet, readPolicyText, DEFAULT_POLICY_DIR, policyFiles, type KernelClause, type KernelProgram, type PolicyProblem } from '../../src/policy/index.js';
import { readFileSync } from 'node:fs';
import { openFlags } from '../../src/events/constants.js';

const KILL_REVERSE_SHELL = `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: kill-reverse-shell}
spec:
  overrides:
  - rule: reverse shell
    action: kill
`;

/** The default policy and more documents after it. */
function withDefaults(...texts: string[]): PolicySet {
  const problems: PolicyProblem[] = [];
  const defaults = policyFiles(DEFAULT_POLICY_DIR, problems).flatMap((f) => readPolicyText(readFileSync(f, 'utf8'), f, problems));
  const docs = [...defaults, ...texts.flatMap((t, i) => readPolicyText(t, `p${i}.yaml`, problems))];
  assert.deepEqual(problems, []);
  return PolicySet.build(docs, (c) => (c.name === 'labelled' ? { labels: { tier: 'prod' } } : undefined));
}

const WEB: ContainerRef = Object.freeze({ id: 'a'.repeat(64), name: 'web-1', image: 'web:1', runtime: 'docker' });
const LABELLED: ContainerRef = Object.freeze({ id: 'c'.repeat(64), name: 'labelled', image: 'x', runtime: 'docker' });

let seq = 0;
function exec(p: { comm: string; exe: string; args: string[]; stdio: StdioKind[]; setup: boolean; name: string }, container: ContainerRef = WEB): VigilEvent {
  return {
    seq: ++seq, time: '1000000000', host: 'h', kind: 'exec', syscall: 'execve', args: { filename: p.exe, argv: p.args }, ret: 0, container,
    process: {
      pid: 100, nsPid: 5, ppid: 1, parent: 'nc', comm: p.comm, exe: p.exe, args: p.args, argsTruncated: false, uid: 0, gid: 0, caps: [],
      containerSetup: p.setup, ancestors: ['nc'], entered: false, stdio: p.stdio, exeWritten: false, exeInImage: true, parentExe: '/bin/busybox', name: p.name,
    },
    namespaces: { mnt: 1, pid: 2, cgroupId: '3', containerKey: '4' },
    verdict: { level: 'NORMAL', rules: [], action: 'none' },
  };
}

/** A clause evaluated as bpf/enforce.bpf.c evaluates it at sched_process_exec. */
function holdsAtExec(c: KernelClause, e: VigilEvent): boolean {
  if (c.where !== 'exec') return false;
  const p = e.process;
  // The executable's name is read up to 63 bytes; an argument whole (its head and tail kept),
  // so a longer one can match a prefix or suffix, never an exact string.
  const fit = (s: string | undefined) => (s !== undefined && Buffer.byteLength(s) <= 63 ? s : undefined);
  const strings: Record<string, string | undefined> = { comm: p.comm, exe_base: fit(p.exe.slice(p.exe.lastIndexOf('/') + 1)), arg0: p.args[0], arg1: p.args[1] };
  const argc = Math.min(p.args.length, 2);
  return c.atoms.every((a) => {
    let r: boolean;
    switch (a.type) {
      case 'setup': r = p.containerSetup; break;
      case 'str': {
        const s = strings[a.field];
        r = s !== undefined && a.values.some((v) => (a.op === 'eq' ? fit(s) === v : a.op === 'prefix' ? s.startsWith(v) : s.endsWith(v)));
        break;
      }
      case 'argc_gt': r = argc > a.n; break;
      case 'stdio_any': r = p.stdio.some((k) => a.kinds.includes(k)); break;
      case 'stdio_at': r = a.kinds.includes(p.stdio[a.fd] ?? 'none'); break;
      case 'syscall': r = false; break;
      default: r = false; break; // sys_exit atoms: never at an exec
    }
    return 'negate' in a && a.negate ? !r : r;
  });
}

function execEvents(): Array<Parameters<typeof exec>[0]> {
  const out: Array<Parameters<typeof exec>[0]> = [];
  const comms = ['sh', 'bash', 'exe', 'busybox', 'python3', 'nginx', 'shx', 'innocent'];
  const exes = ['/bin/busybox', '/bin/bash', '/usr/bin/python3', '/tmp/x/busybox', '/bin/busybox.static', '/bin/sh'];
  // A long argv[0] ending in /sh: busybox runs its shell applet for it (an attacker's way past a 63-byte read).
  const longSh = `/${'x/'.repeat(40)}sh`;
  const argvs = [[], ['sh'], ['-sh'], ['/bin/sh'], ['/tmp/sh'], ['busybox', 'sh'], ['busybox', 'ls'], ['x'.repeat(70), 'sh'], ['innocent'], ['sh', '-i'], [longSh], [`${longSh}x`], ['x'.repeat(3000)]];
  const stdios: StdioKind[][] = [['inet', 'inet', 'inet'], ['pipe', 'pipe', 'pipe'], ['tty', 'tty', 'tty'], ['none', 'inet6', 'none'], ['unix', 'unix', 'unix']];
  for (const comm of comms) for (const exe of exes) for (const args of argvs) for (const stdio of stdios) for (const setup of [false, true]) {
    out.push({ comm, exe, args, stdio, setup, name: 'whatever' });
  }
  return out;
}

test('the default policy alone has no kill rule: nothing for the kernel (the in-kernel kill is not loaded)', () => {
  const program = compileKernelRules(withDefaults());
  assert.deepEqual(program.rules, []);
  assert.deepEqual(program.clauses, []);
});

test('reverse shell as a kill rule: the exec case goes to the kernel, the connect case and process.name stay in user space', () => {
  const program = compileKernelRules(withDefaults(KILL_REVERSE_SHELL));
  assert.deepEqual(program.rules, ['reverse shell']);
  assert.deepEqual(program.everywhere, ['reverse shell']);
  const [report] = program.report;
  assert.equal(report?.enforced, 'partial');
  // The exec conjunctions the kernel can decide: shells and interpreters by name, and busybox's
  // shell applet however it is reached (argv[0], `busybox sh`, busybox run by name by an applet).
  assert.equal(program.clauses.length, 7);
  const execClauses = program.clauses.filter((c) => c.where === 'exec');
  assert.equal(execClauses.length, 6);
  assert.ok(program.clauses.every((c) => c.atoms.length <= 8));
  // The connect case a shell makes to an address outside allowed_networks: at the connect's
  // sys_exit, on the socket's peer (the interactive case tests stdio: left to user space).
  const connect = program.clauses.find((c) => c.where === 'sys_exit');
  assert.ok(connect, 'a sys_exit clause');
  // io_uring's connect too, filed under io_uring_enter: decided at the socket's active open.
  assert.deepEqual(connect.atoms[0], { type: 'syscall', names: ['connect', 'io_uring_enter'] });
  assert.ok(connect.atoms.some((a) => a.type === 'net' && a.negate && a.text.includes('10.0.0.0/8')));
  assert.ok(connect.atoms.some((a) => a.type === 'family' && !a.negate));
  // Every exec clause asks for the container's own code and a socket on a standard stream.
  for (const c of execClauses) {
    assert.deepEqual(c.atoms[0], { type: 'setup', negate: true });
    assert.ok(c.atoms.some((a) => a.type === 'stdio_any' && a.kinds.includes('inet') && a.kinds.includes('inet6')));
  }
  // The busybox applet case, with the exists over shell_binaries expanded and "-" + s folded.
  const applet = execClauses.find((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'arg0' && a.op === 'eq' && a.values.includes('sh')));
  const arg0 = applet?.atoms.find((a) => a.type === 'str' && a.field === 'arg0' && a.op === 'eq');
  assert.ok(arg0 && arg0.type === 'str' && arg0.values.includes('sh') && arg0.values.includes('-sh'));
  assert.ok(execClauses.some((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'arg0' && a.op === 'suffix' && a.values.includes('/sh'))));
  assert.ok(report?.reasons.some((r) => r.includes('process.name')), report?.reasons.join('; '));
  assert.ok(!report?.reasons.some((r) => r.includes('io_uring:connect')), report?.reasons.join('; '));
  const lines = kernelReportLines(program).join('\n');
  assert.match(lines, /reverse shell: kernel kills: partly/);
  assert.match(lines, /left to user space: \(process.name in shell_binaries\)/);
});

test('whenever a kernel clause holds for an exec, the rule itself judges it kill (the kernel never kills what user space would not)', () => {
  const set = withDefaults(KILL_REVERSE_SHELL);
  const program = compileKernelRules(set);
  let killed = 0;
  let checked = 0;
  for (const p of execEvents()) {
    const e = exec(p);
    const kernel = program.clauses.some((c) => holdsAtExec(c, e));
    const verdict = set.judge(e);
    checked++;
    if (!kernel) continue;
    killed++;
    assert.equal(verdict.action, 'kill', `kernel kills but the rule does not: ${JSON.stringify(p)} -> ${JSON.stringify(verdict)}`);
    assert.ok(verdict.rules.includes('reverse shell'));
  }
  assert.ok(checked > 6000 && killed > 50, `${killed} of ${checked}`);
  // The attacks the acceptance test runs are among those the kernel decides.
  const cases = [
    { comm: 'exe', exe: '/bin/busybox', args: ['sh'], stdio: ['inet', 'inet', 'inet'] as StdioKind[], setup: false, name: 'sh' }, // busybox nc -e sh
    { comm: 'bash', exe: '/bin/bash', args: ['bash', '-i'], stdio: ['inet', 'inet', 'inet'] as StdioKind[], setup: false, name: 'bash' }, // bash -i >& /dev/tcp
    { comm: 'bash', exe: '/bin/bash', args: ['innocent', '-i'], stdio: ['inet', 'inet', 'inet'] as StdioKind[], setup: false, name: 'bash' }, // exec -a
    { comm: 'exe', exe: '/bin/busybox', args: [`/${'x/'.repeat(40)}sh`], stdio: ['inet', 'inet', 'inet'] as StdioKind[], setup: false, name: 'sh' }, // a long argv[0]
  ];
  for (const p of cases) assert.ok(program.clauses.some((c) => holdsAtExec(c, exec(p))), JSON.stringify(p));
  // The runtime's own exec (containerSetup) and a shell on pipes are not.
  assert.ok(!program.clauses.some((c) => holdsAtExec(c, exec({ ...cases[0]!, setup: true }))));
  assert.ok(!program.clauses.some((c) => holdsAtExec(c, exec({ ...cases[0]!, stdio: ['pipe', 'pipe', 'pipe'] }))));
});

const RULES = (body: string) => `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: extra}
spec:
${body}`;

test('negation is kept only where the kernel decides exactly; exceptions and counting rules stay in user space', () => {
  const program = compileKernelRules(withDefaults(RULES(`  rules:
  - name: not a shell
    kinds: [exec]
    condition: '!(process.comm in ["sh", "bash"]) && process.stdio[0] == "inet"'
    action: kill
  - name: negated argv
    kinds: [exec]
    condition: '!process.args[0].endsWith("sh") && process.stdio[0] == "inet"'
    action: kill
  - name: with exception
    kinds: [exec]
    condition: 'process.comm == "nc"'
    exceptions: [{name: ok, condition: 'process.uid == 0'}]
    action: kill
  - name: counted
    kinds: [exec]
    condition: 'process.comm == "nc"'
    threshold: {count: 3, seconds: 10}
    action: kill
`)));
  const byName = (n: string) => program.report.find((r) => r.rule === n);
  assert.equal(byName('not a shell')?.enforced, 'full');
  const clause = program.clauses[program.rules.indexOf('not a shell')];
  assert.deepEqual(clause?.atoms, [
    { type: 'str', field: 'comm', op: 'eq', values: ['sh', 'bash'], negate: true },
    { type: 'stdio_at', fd: 0, kinds: ['inet'], negate: false },
  ]);
  assert.equal(byName('negated argv')?.enforced, 'none');
  assert.match(byName('negated argv')?.reasons.join() ?? '', /negated string test/);
  assert.equal(byName('with exception')?.enforced, 'none');
  assert.match(byName('with exception')?.reasons.join() ?? '', /exceptions/);
  assert.equal(byName('counted')?.enforced, 'none');
});

test('system call rules: a listed call at sys_enter; calls only some of whose records reach user space are left to it', () => {
  const program = compileKernelRules(withDefaults(RULES(`  rules:
  - name: no personality
    kinds: [process]
    condition: 'container_code && syscall in ["personality", "ptrace"]'
    action: kill
  - name: opens
    kinds: [file]
    condition: 'syscall == "openat" || syscall == "mknod"'
    action: kill
  - name: wrong kind
    kinds: [network]
    condition: 'syscall == "personality"'
    action: kill
  - name: at any call
    condition: 'process.comm == "evil"'
    action: kill
`)));
  const byName = (n: string) => program.report.find((r) => r.rule === n);
  assert.equal(byName('no personality')?.enforced, 'full');
  const c = program.clauses.find((x) => x.rule === program.rules.indexOf('no personality'));
  assert.deepEqual(c, { rule: program.rules.indexOf('no personality'), where: 'sys_enter', atoms: [{ type: 'syscall', names: ['personality', 'ptrace'] }, { type: 'setup', negate: true }] });
  // openat passes the path filter: only mknod is the kernel's.
  assert.equal(byName('opens')?.enforced, 'partial');
  assert.match(byName('opens')?.reasons.join() ?? '', /openat/);
  assert.ok(program.clauses.some((x) => x.atoms.some((a) => a.type === 'syscall' && a.names.join() === 'mknod')));
  // personality is a process call: a network-only rule never sees it, so nothing to kill.
  assert.equal(byName('wrong kind')?.enforced, 'none');
  assert.equal(byName('at any call')?.enforced, 'none');
  assert.match(byName('at any call')?.reasons.join() ?? '', /names no system call/);
});

test('sys_exit rules: what an open opened (path, flags), what a connect connected to (port, network), an exec by its whole path', () => {
  const program = compileKernelRules(withDefaults(RULES(`  rules:
  - name: no shadow read
    kinds: [file]
    condition: 'container_code && files_opened_to_read && (file_path == "/etc/shadow" || file_path.startsWith("/root/.ssh/"))'
    action: kill
  - name: no pool
    kinds: [network]
    condition: 'syscall in connect_syscalls && has(args.port) && int(args.port) in [3333, 4444]'
    action: kill
  - name: quarantine
    kinds: [network]
    condition: 'syscall == "connect" && inNetworks(string(args.addr), ["10.9.0.0/16", "fd00::/8", "not a network"])'
    action: kill
  - name: from tmp
    kinds: [exec]
    condition: 'kind == "exec" && (process.exe == "/usr/bin/nc" || process.exe.startsWith("/tmp/"))'
    action: kill
  - name: removed
    kinds: [file]
    condition: 'syscall == "unlinkat" && file_path == "/etc/shadow"'
    action: kill
  - name: path alone
    kinds: [file]
    condition: 'file_path == "/etc/shadow"'
    action: kill
`)));
  const byName = (n: string) => program.report.find((r) => r.rule === n);
  const clausesOf = (n: string) => program.clauses.filter((c) => c.rule === program.rules.indexOf(n));

  // io_uring's openat is not a system call the program sees: partly.
  assert.equal(byName('no shadow read')?.enforced, 'partial');
  assert.match(byName('no shadow read')?.reasons.join() ?? '', /io_uring:openat/);
  const shadow = clausesOf('no shadow read');
  assert.ok(shadow.length >= 1 && shadow.every((c) => c.where === 'sys_exit'));
  // creat is excluded by the macro (syscall != "creat"); the flags tests are bits.
  for (const c of shadow) {
    assert.deepEqual(c.atoms[0], { type: 'syscall', names: ['open', 'openat', 'openat2'] });
    assert.ok(c.atoms.some((a) => a.type === 'oflags' && a.negate && a.text === 'O_WRONLY' && a.access.join() === '1' && a.bits === 0));
    assert.ok(c.atoms.some((a) => a.type === 'oflags' && a.negate && a.text === 'O_PATH' && a.bits === 0o10000000));
  }
  assert.ok(shadow.some((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'path' && a.op === 'eq' && a.values.includes('/etc/shadow'))));
  assert.ok(shadow.some((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'path' && a.op === 'prefix' && a.values.includes('/root/.ssh/'))));

  const pool = clausesOf('no pool');
  assert.equal(pool.length, 1);
  assert.equal(pool[0]?.where, 'sys_exit');
  assert.ok(pool[0]?.atoms.some((a) => a.type === 'port' && !a.negate && a.ports.join() === '3333,4444'));

  assert.equal(byName('quarantine')?.enforced, 'full');
  const net = clausesOf('quarantine')[0]?.atoms.find((a) => a.type === 'net');
  assert.ok(net && net.type === 'net');
  // The bytes of each network, host bits clear; a text inNetworks never matches is left out.
  assert.deepEqual(net.networks, [{ bytes: [10, 9, 0, 0], prefix: 16 }, { bytes: [0xfd, ...Array(15).fill(0)], prefix: 8 }]);

  assert.equal(byName('from tmp')?.enforced, 'full');
  const exe = clausesOf('from tmp');
  assert.ok(exe.every((c) => c.where === 'exec'));
  assert.ok(exe.some((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'exe' && a.op === 'eq' && a.values.includes('/usr/bin/nc'))));
  assert.ok(exe.some((c) => c.atoms.some((a) => a.type === 'str' && a.field === 'exe' && a.op === 'prefix' && a.values.includes('/tmp/'))));

  // unlinkat's path is its argument, not an opened fd: user space's.
  assert.equal(byName('removed')?.enforced, 'none');
  assert.match(byName('removed')?.reasons.join() ?? '', /what an open opened/);
  assert.equal(byName('path alone')?.enforced, 'none');
  assert.match(byName('path alone')?.reasons.join() ?? '', /without naming the system call/);
});

test('flags tests in the kernel agree with the record\'s flags text for every name and many flag values', () => {
  const names = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_TRUNC', 'O_PATH', 'O_CLOEXEC', 'O_DIRECT', 'O_DIRECTORY', 'O_SYNC', 'O_DSYNC', 'O_TMPFILE', 'O_ACCMODE', 'RDONLY', 'DIRECT', 'SYNC'];
  const program = compileKernelRules(withDefaults(RULES(`  rules:
${names.map((n, i) => `  - name: flags ${i}
    kinds: [file]
    condition: 'syscall == "openat" && file_path == "/x" && has(args.flags) && string(args.flags).contains("${n}")'
    action: kill
`).join('')}`)));
  const values = [0, 1, 2, 3, 0o100, 0o1101, 0o2000000, 0o10000000, 0o40000, 0o200000, 0o240000, 0o4010000, 0o10000, 0o20200000, 0o2100102];
  names.forEach((n, i) => {
    const clause = program.clauses.find((c) => c.rule === program.rules.indexOf(`flags ${i}`));
    const atom = clause?.atoms.find((a) => a.type === 'oflags');
    assert.ok(atom && atom.type === 'oflags', n);
    for (const v of values) {
      const inKernel: boolean = (v & atom.bits) !== 0 || atom.access.includes(v & 3);
      assert.equal(inKernel, openFlags(v).includes(n), `${n} in ${openFlags(v)}`);
    }
  });
});

/** The facts bpf/enforce.bpf.c reads at sys_exit, from an event as user space sees the same call. */
function holdsAtExit(c: KernelClause, e: VigilEvent, facts: { fdPath?: string; flags?: number; sock?: { v6: boolean; addr: number[]; port: number } }): boolean {
  if (c.where !== 'sys_exit') return false;
  const p = e.process;
  const strings: Record<string, string | undefined> = { comm: p.comm, path: facts.fdPath };
  return c.atoms.every((a) => {
    let r: boolean;
    switch (a.type) {
      case 'setup': r = p.containerSetup; break;
      case 'syscall': return a.names.includes(e.syscall);
      case 'failed': return Number(e.ret) < 0;
      case 'str': {
        const v = strings[a.field];
        if (v === undefined) return false; // a fact the call does not have: false either way
        const fits = Buffer.byteLength(v) <= 63;
        r = a.values.some((x) => (a.op === 'eq' ? fits && v === x : a.op === 'prefix' ? v.startsWith(x) : v.endsWith(x)));
        break;
      }
      case 'oflags':
        if (facts.flags === undefined) return false;
        r = (facts.flags & a.bits) !== 0 || a.access.includes(facts.flags & 3);
        break;
      case 'port':
        if (!facts.sock) return false;
        r = a.ports.includes(facts.sock.port);
        break;
      case 'family':
        if (!facts.sock) return false;
        r = a.families.includes(facts.sock.v6 ? 'AF_INET6' : 'AF_INET');
        break;
      case 'net': {
        if (!facts.sock) return false;
        const addr = facts.sock.addr;
        r = a.networks.some((n) => n.bytes.length === addr.length && [...Array(n.prefix).keys()].every((bit) => ((addr[bit >> 3]! >> (7 - (bit & 7))) & 1) === ((n.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1)));
        break;
      }
      default: return false;
    }
    return 'negate' in a && a.negate ? !r : r;
  });
}

test('whenever a sys_exit clause holds for an open or a connect, the rule itself judges it kill', () => {
  const set = withDefaults(RULES(`  overrides:
  - rule: read sensitive file
    action: kill
  - rule: crypto mining
    action: kill
  - rule: connect outside
    action: kill
  - rule: reverse shell
    action: kill
`));
  const program = compileKernelRules(set);
  assert.ok(program.clauses.some((c) => c.where === 'sys_exit'));
  let checked = 0;
  let killed = 0;
  const judge = (e: VigilEvent, facts: Parameters<typeof holdsAtExit>[2], what: string) => {
    checked++;
    if (!program.clauses.some((c) => holdsAtExit(c, e, facts))) return;
    killed++;
    const v = set.judge(e);
    assert.equal(v.action, 'kill', `kernel kills but the rules do not: ${what} -> ${JSON.stringify(v)}`);
  };
  const base = exec({ comm: 'cat', exe: '/bin/cat', args: ['cat'], stdio: ['pipe', 'pipe', 'pipe'], setup: false, name: 'cat' });
  const paths = ['/etc/shadow', '/etc/passwd', '/etc/shadow-', '/root/.ssh/id_rsa', '/home/u/.ssh/id_ed25519', '/tmp/x', `/${'d/'.repeat(40)}.ssh/id_rsa`];
  const flagValues = [0, 1, 2, 0o10000000, 0o2000000, 0o101, 0o1102, 0o4010000];
  for (const syscall of ['open', 'openat', 'openat2', 'creat', 'unlinkat']) for (const path of paths) for (const flags of flagValues) for (const ret of [3, -2]) for (const comm of ['cat', 'sshd', 'sh', 'python3']) for (const setup of [false, true]) {
    const hasFlags = syscall !== 'creat' && syscall !== 'unlinkat';
    const e: VigilEvent = { ...base, seq: ++seq, kind: 'file', syscall, ret, args: { path, name: path, ...(hasFlags ? { flags: openFlags(flags) } : {}) },
      process: { ...base.process, comm, args: [comm, path], containerSetup: setup } };
    const opens = syscall !== 'unlinkat';
    judge(e, { fdPath: opens && ret >= 0 ? path : undefined, flags: opens && hasFlags ? flags : undefined }, `${syscall} ${path} ${openFlags(flags)} ret ${ret} ${comm}`);
  }
  const socks: Array<[string, string, number[], boolean]> = [
    ['AF_INET', '10.1.2.3', [10, 1, 2, 3], false], ['AF_INET', '8.8.8.8', [8, 8, 8, 8], false], ['AF_INET', '127.0.0.1', [127, 0, 0, 1], false],
    ['AF_INET6', '::ffff:8.8.8.8', [8, 8, 8, 8], true], ['AF_INET6', '2001:db8::1', [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1], true], ['AF_INET6', '::1', [...Array(15).fill(0), 1], true],
  ];
  for (const [family, address, bytes, v6] of socks) for (const port of [80, 4444, 3333, 443]) for (const comm of ['sh', 'bash', 'nc', 'python3', 'xmrig']) for (const stdio of [['pipe', 'pipe', 'pipe'], ['tty', 'tty', 'tty']] as StdioKind[][]) {
    const addr = v6 ? `[${address}]:${port}` : `${address}:${port}`;
    const e: VigilEvent = { ...base, seq: ++seq, kind: 'network', syscall: 'connect', ret: 0, args: { fd: 3, addr_family: family, addr, port },
      process: { ...base.process, comm, exe: `/bin/${comm}`, args: [comm], stdio, name: comm } };
    judge(e, { sock: { v6, addr: bytes, port } }, `${comm} connect ${addr}`);
  }
  assert.ok(checked > 2000 && killed > 100, `${killed} of ${checked}`);
});

test('per container: a rule scoped by a selector is off until the container is known, on where it applies, off for a protected one', () => {
  const set = withDefaults(RULES(`  rules:
  - name: prod shells
    kinds: [exec]
    condition: 'process.comm == "sh" && process.stdio[1] == "inet"'
    enabled: false
    action: kill
`), `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: prod}
spec:
  selector: {labels: {tier: prod}}
  overrides:
  - rule: prod shells
    enabled: true
`, KILL_REVERSE_SHELL);
  const program: KernelProgram = compileKernelRules(set);
  assert.deepEqual(program.rules.sort(), ['prod shells', 'reverse shell']);
  const bit = (n: string) => 1 << program.rules.indexOf(n);
  assert.equal(defaultKernelMask(program), bit('reverse shell'), 'before a container is known: only rules that are kill everywhere');
  assert.equal(kernelMaskFor(program, set, LABELLED, false), bit('reverse shell') | bit('prod shells'));
  assert.equal(kernelMaskFor(program, set, WEB, false), bit('reverse shell'));
  assert.equal(kernelMaskFor(program, set, LABELLED, true), 0, 'protected: nothing in the kernel');
});

test('vigil policy list prints the kernel report (loadPolicies on a directory)', () => {
  // Through the loader as the CLI does it: the same report for the same policy.
  const program = compileKernelRules(loadPolicies([]).set);
  assert.deepEqual(kernelReportLines(program), []);
});
