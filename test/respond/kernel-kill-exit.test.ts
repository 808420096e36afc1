// The in-kernel kill at sys_exit (bpf/enforce.bpf.c vigil_enforce_exit): kill rules about what a
// call opened or connected to are decided on the kernel's own objects when the call returns: the
// opened fd's path (so a symlink, a relative name or a name swapped in memory does not hide the
// file), the open's flags, the connected socket's peer address and port. The call has run, but
// the process runs no instruction after it: cat prints nothing of the file it opened, nc sends
// nothing on the socket it connected. Each rule here is scoped to the test's own containers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { probeStrongerHooks } from '../../src/sensor/index.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForContainerTests, TEST_IMAGES, WORKLOAD_IMAGES, uniqueName } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, startAgent, readEvents, type RunningAgent } from '../helpers/agent-process.js';
import { eventsUntil, scoped } from './events.js';
import { createCatcher, type Catcher } from './listener.js';
import type { VigilEvent } from '../../src/events/index.js';

const skip = missingForContainerTests();
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const evasionSource = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'evasion.c');
const SECRET = 'SECRET$((6*7))\n';

/**
 * Runs script in a new container once the agent knows the container (the rules here are scoped
 * to names, and a container's scoped rules reach the kernel when the agent has resolved it): the
 * container first execs `sh -c true vigil-ready` (an alert of this test's own rule), the test waits
 * for that alert under the container's name, then lets the script go. Returns its output.
 */
async function runContainer(agent: RunningAgent, name: string, image: string, script: string, dockerArgs: string[] = []): Promise<string> {
  const wait = 'sh -c true vigil-ready; while [ ! -e /tmp/go ]; do sleep 0.05; done';
  const started = spawnSync('docker', ['run', '-d', '--pull', 'never', '--name', name, ...dockerArgs, image, 'sh', '-c', `${wait}; ${script}`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(started.status, 0, started.stderr);
  try {
    const ready = await eventsUntil(agent, name, (es) => es.some((e) => e.verdict.rules.includes('test container ready')));
    assert.ok(ready.length > 0, `the agent never named container ${name}`);
    spawnSync('docker', ['exec', name, 'touch', '/tmp/go'], { timeout: 60_000 });
    spawnSync('docker', ['wait', name], { timeout: 60_000 });
    const logs = spawnSync('docker', ['logs', name], { encoding: 'utf8', timeout: 60_000 });
    return (logs.stdout ?? '') + (logs.stderr ?? '');
  } finally {
    spawnSync('docker', ['rm', '-f', name], { timeout: 60_000 });
  }
}

/** The container's kernel-killed event, once its response record is in too. */
async function killedEvent(agent: RunningAgent, name: string): Promise<VigilEvent> {
  const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response' && e.args['layer'] === 'kernel'));
  const event = es.find((e) => e.kind !== 'response' && e.response?.layer === 'kernel');
  assert.ok(event, `no kernel-killed event: ${JSON.stringify(es.map((e) => [e.kind, e.syscall, e.args['path'], e.verdict.rules, e.response]))}`);
  assert.equal(event.response?.outcome, 'done');
  assert.ok(!es.some((e) => e.kind === 'response' && e.args['layer'] === 'user-space'), 'user space took no action of its own');
  return event;
}

describe('in-kernel kill at sys_exit: an open of a listed file, a connect to a listed port or network, an exec of a listed path', { skip }, () => {
  let agent: RunningAgent;
  let catcher: Catcher;
  let net: string;

  before(async () => {
    // The catcher listens on port 4444 (a mining pool port of the default lists) in a namespace of its own.
    catcher = await createCatcher(10 + (process.pid % 40), SECRET);
    net = `${catcher.address.split('.').slice(0, 3).join('.')}.0/24`;
    const dir = mkdtempSync(join(tmpdir(), 'vigil-kexit-'));
    scoped(dir, 'files.yaml', 'vigil-kexit-file', ['  overrides:', '    - rule: read sensitive file', '      action: kill']);
    scoped(dir, 'mining.yaml', 'vigil-kexit-port', ['  overrides:', '    - rule: crypto mining', '      action: kill']);
    scoped(dir, 'net.yaml', 'vigil-kexit-net', ['  rules:', '    - name: connect to the quarantine network',
      '      description: a connection to a network of the test, killed at the connect',
      '      kinds: [network]',
      `      condition: 'container_code && syscall in connect_syscalls && has(args.addr) && inNetworks(string(args.addr), ["${net}"])'`,
      '      severity: high', '      action: kill']);
    scoped(dir, 'exe.yaml', 'vigil-kexit-exe', ['  rules:', '    - name: program run from /tmp',
      '      description: a program executed from /tmp, killed at the exec',
      '      kinds: [exec]',
      "      condition: 'container_code && kind == \"exec\" && process.exe.startsWith(\"/tmp/\")'",
      '      severity: high', '      action: kill']);
    writeFileSync(join(dir, 'ready.yaml'), ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: ready', 'spec:', '  rules:',
      '    - name: test container ready', '      description: the mark a test container makes when it starts', '      kinds: [exec]',
      "      condition: 'kind == \"exec\" && process.args.exists(a, a == \"vigil-ready\")'", '      severity: low', ''].join('\n'));
    agent = await startAgent([ALERTS_ONLY_LOG, '--policy', dir, '--no-control-socket']);
  });
  after(async () => {
    try {
      await agent?.stop();
    } finally {
      catcher?.close();
    }
  });

  test('the agent says which rules the kernel decides at sys_exit', () => {
    assert.match(agent.stderr(), /kill rule 'read sensitive file': the kernel kills/);
    assert.match(agent.stderr(), /kill rule 'crypto mining': the kernel kills/);
    assert.match(agent.stderr(), /kill rule 'connect to the quarantine network': the kernel kills \(every case\)|kill rule 'connect to the quarantine network': the kernel kills/);
    assert.match(agent.stderr(), /kill rule 'program run from \/tmp': the kernel kills \(every case\)/);
    // Which stronger hook this host has, found by loading probe programs: on a kernel without
    // kprobes and BPF trampolines (this project's VM), none, and the line says why.
    const hooks = probeStrongerHooks();
    assert.match(agent.stderr(), /in-kernel kill: SIGKILL at the call/);
    assert.ok(agent.stderr().includes(`BPF-LSM: ${hooks.bpfLsm.why}; bpf_override_return: ${hooks.overrideReturn.why}`), agent.stderr());
    if (!existsSync('/sys/bus/event_source/devices/kprobe')) assert.equal(hooks.overrideReturn.available, false);
  });

  test('cat /etc/shadow by its name, through a symlink, by a relative name, from python: dies at the open, prints nothing of it', async () => {
    const variants: Array<[string, string, string]> = [
      ['by name', TEST_IMAGES.busybox, 'cat /etc/shadow; echo "exit $?"'],
      ['symlink', TEST_IMAGES.busybox, 'ln -s /etc/shadow /tmp/notes && cat /tmp/notes; echo "exit $?"'],
      ['relative', TEST_IMAGES.busybox, 'cd /etc && cat ./shadow; echo "exit $?"'],
      ['dot-dot', TEST_IMAGES.busybox, 'cd /tmp && cat ../etc//shadow; echo "exit $?"'],
      ['python', WORKLOAD_IMAGES.python, 'python3 -c \'import os; fd = os.open("/etc/shadow", os.O_RDONLY); os.write(1, b"READ:" + os.read(fd, 64))\'; echo "exit $?"'],
    ];
    for (const [what, image, script] of variants) {
      const name = uniqueName('vigil-kexit-file');
      const out = await runContainer(agent, name, image, script);
      assert.match(out, /exit 137/, `${what}: ${out}`);
      assert.doesNotMatch(out, /root:|READ:/, `${what}: nothing of the file was printed`);
      const event = await killedEvent(agent, name);
      assert.equal(event.kind, 'file', what);
      assert.equal(event.args['path'], '/etc/shadow', `${what}: the kernel's path of the fd`);
      assert.equal(event.response?.rule, 'read sensitive file', what);
    }
  });

  test('a 32-bit open (int 0x80 from a 64-bit program) of /etc/shadow dies at the open too', { skip: hasCc ? undefined : 'no C compiler (cc) to build the fixture' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-kexit-cc-'));
    chmodSync(dir, 0o755);
    const built = join(dir, 'evasion');
    // Static and not position-independent: its data lies below 4 GiB, where int 0x80 can point.
    execFileSync('cc', ['-O2', '-static', '-no-pie', '-pthread', '-o', built, evasionSource]);
    const name = uniqueName('vigil-kexit-file');
    const out = await runContainer(agent, name, TEST_IMAGES.busybox, '/evasion int80-open /etc/shadow; echo "exit $?"', ['-v', `${built}:/evasion:ro`]);
    assert.match(out, /exit 137/, out);
    assert.doesNotMatch(out, /int80 open/, 'the program ran nothing after the call');
    const event = await killedEvent(agent, name);
    assert.equal(event.syscall, 'open');
    assert.equal(event.args['abi'], 'i386');
    assert.equal(event.args['path'], '/etc/shadow');
  });

  test('opens the rule does not name are left alone: /etc/passwd read, /etc/shadow opened for writing', async () => {
    const name = uniqueName('vigil-kexit-file');
    const out = await runContainer(agent, name, TEST_IMAGES.busybox, 'head -c 5 /etc/passwd; echo; echo >> /etc/shadow; echo "exit $?"');
    assert.match(out, /root:/, out);
    assert.match(out, /exit 0/, out);
    // A later container's kill marks that this one's records are all in.
    const marker = uniqueName('vigil-kexit-file');
    await runContainer(agent, marker, TEST_IMAGES.busybox, 'cat /etc/shadow');
    await killedEvent(agent, marker);
    const es = readEvents(agent.logPath).filter((e) => e.container.name === name);
    assert.ok(!es.some((e) => e.response), JSON.stringify(es.filter((e) => e.response).map((e) => [e.syscall, e.args['path'], e.response])));
  });

  test('nc to a mining pool port: dies at the connect, the listener receives nothing (5 runs)', async () => {
    for (let i = 0; i < 5; i++) {
      const name = uniqueName('vigil-kexit-port');
      const n = catcher.catches().length;
      const out = await runContainer(agent, name, TEST_IMAGES.busybox, `echo MINED | nc ${catcher.address} ${catcher.port}; echo "exit $?"`);
      assert.match(out, /exit 137/, `run ${i}: ${out}`);
      const caught = await catcher.waitFor(n + 1);
      assert.equal(caught[n]?.got, '', `run ${i}: the listener received ${JSON.stringify(caught[n]?.got)}`);
      const event = await killedEvent(agent, name);
      assert.equal(event.kind, 'network');
      assert.equal(event.syscall, 'connect');
      assert.equal(event.args['port'], catcher.port);
      assert.equal(event.response?.rule, 'crypto mining');
    }
  });

  test('a connect into a listed network dies, from busybox and from python over IPv4-mapped IPv6; the same program to another network lives', async () => {
    const variants: Array<[string, string, string]> = [
      ['busybox nc', TEST_IMAGES.busybox, `echo HELLO | nc ${catcher.address} ${catcher.port}; echo "exit $?"`],
      ['python v4-mapped', WORKLOAD_IMAGES.python, `python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.connect(("::ffff:${catcher.address}", ${catcher.port})); s.send(b"HELLO")'; echo "exit $?"`],
    ];
    for (const [what, image, script] of variants) {
      const name = uniqueName('vigil-kexit-net');
      const n = catcher.catches().length;
      const out = await runContainer(agent, name, image, script);
      assert.match(out, /exit 137/, `${what}: ${out}`);
      const caught = await catcher.waitFor(n + 1);
      assert.equal(caught[n]?.got, '', `${what}: the listener received ${JSON.stringify(caught[n]?.got)}`);
      const event = await killedEvent(agent, name);
      assert.equal(event.syscall, 'connect', what);
      assert.equal(event.response?.rule, 'connect to the quarantine network', what);
    }
    // Loopback is not the listed network: the connect is refused, the program goes on.
    const name = uniqueName('vigil-kexit-net');
    const out = await runContainer(agent, name, TEST_IMAGES.busybox, 'nc 127.0.0.1 4444 </dev/null; echo "exit $?"');
    assert.doesNotMatch(out, /exit 137/, out);
  });

  test('a program copied to /tmp dies at its exec before it prints; the same program from /bin runs', async () => {
    const name = uniqueName('vigil-kexit-exe');
    const out = await runContainer(agent, name, TEST_IMAGES.busybox, '/bin/busybox echo FROM-BIN; cp /bin/busybox /tmp/echo && /tmp/echo FROM-TMP; echo "exit $?"');
    assert.match(out, /FROM-BIN/, out);
    assert.doesNotMatch(out, /FROM-TMP/, out);
    assert.match(out, /exit 137/, out);
    const event = await killedEvent(agent, name);
    assert.equal(event.kind, 'exec');
    assert.equal(event.process.exe, '/tmp/echo');
    assert.equal(event.response?.rule, 'program run from /tmp');
  });

  test('last: the kill rules\' maps (sets, tries, masks) read back as the agent wrote them: no maps-changed entry', () => {
    // The agent compares them every second: by now, after the tests above, tens of times.
    const own = readEvents(agent.logPath).filter((e) => e.kind === 'agent' && e.syscall === 'maps-changed');
    assert.deepEqual(own.map((e) => e.args), []);
  });
});
