// Attacks on the in-kernel kill at sys_exit (bpf/enforce.bpf.c vigil_enforce_exit) and at the
// exec, from inside a container (root, Docker's default capabilities unless a test says it
// adds one): read /etc/shadow while `read sensitive file` kills, send bytes to port 4444 while
// `crypto mining` kills, run a program copied to /tmp while `process.exe.startsWith("/tmp/")`
// kills. An attack the kernel stops is a test that it stays stopped; one that gets through is
// a `todo` test (it asserts what should hold) whose text says what leaked. The attack programs
// are test/respond/fixtures/kill-attack.c; every rule is scoped to this file's own containers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForContainerTests, TEST_IMAGES, WORKLOAD_IMAGES, uniqueName } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, startAgent, readEvents, type RunningAgent } from '../helpers/agent-process.js';
import { eventsUntil, scoped } from './events.js';
import { createCatcher, type Catch, type Catcher } from './listener.js';

const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (hasCc ? undefined : 'no C compiler (cc) to build the attack programs');
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const attackSource = join(root, 'test', 'respond', 'fixtures', 'kill-attack.c');
const evasionSource = join(root, 'test', 'agent', 'fixtures', 'evasion.c');
const FILE = 'vigil-kattack-file';
const PORT = 'vigil-kattack-port';
const EXE = 'vigil-kattack-exe';

interface Outcome {
  name: string;
  out: string;
  /** Who killed something of the container, as its response records say: "kernel", "user-space". */
  layers: string[];
}

/**
 * Runs script in a new container once the agent has resolved it (the rules are scoped to names;
 * a container's scoped rules reach the kernel then): the container first execs
 * `true vigil-ready`, the test waits for that alert, then lets the script go. Returns the
 * container's output and, once the agent's records of it are in (a marker container's kill,
 * which comes after them), which layers killed.
 */
async function attack(agent: RunningAgent, prefix: string, image: string, script: string, dockerArgs: string[] = []): Promise<Outcome> {
  const name = uniqueName(prefix);
  const wait = 'sh -c true vigil-ready; while [ ! -e /tmp/go ]; do sleep 0.05; done';
  const started = spawnSync('docker', ['run', '-d', '--pull', 'never', '--name', name, ...dockerArgs, image, 'sh', '-c', `${wait}; ${script}`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(started.status, 0, started.stderr);
  let out = '';
  try {
    const ready = await eventsUntil(agent, name, (es) => es.some((e) => e.verdict.rules.includes('test container ready')), 90_000);
    assert.ok(ready.length > 0, `the agent never named container ${name}: ${agent.stderr().slice(-1500)}`);
    spawnSync('docker', ['exec', name, 'touch', '/tmp/go'], { timeout: 60_000 });
    spawnSync('docker', ['wait', name], { timeout: 180_000 });
    const logs = spawnSync('docker', ['logs', name], { encoding: 'utf8', timeout: 60_000 });
    out = (logs.stdout ?? '') + (logs.stderr ?? '');
  } finally {
    spawnSync('docker', ['rm', '-f', name], { timeout: 60_000 });
  }
  // The agent's records of the container are in once a later container's kill is.
  const marker = uniqueName(FILE);
  const ms = spawnSync('docker', ['run', '-d', '--pull', 'never', '--name', marker, TEST_IMAGES.busybox, 'sh', '-c',
    'sh -c true vigil-ready; while [ ! -e /tmp/go ]; do sleep 0.05; done; cat /etc/shadow'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(ms.status, 0, ms.stderr);
  try {
    await eventsUntil(agent, marker, (es) => es.some((e) => e.verdict.rules.includes('test container ready')), 90_000);
    spawnSync('docker', ['exec', marker, 'touch', '/tmp/go'], { timeout: 60_000 });
    spawnSync('docker', ['wait', marker], { timeout: 60_000 });
    await eventsUntil(agent, marker, (es) => es.some((e) => e.kind === 'response'));
  } finally {
    spawnSync('docker', ['rm', '-f', marker], { timeout: 60_000 });
  }
  const es = readEvents(agent.logPath).filter((e) => e.container.name === name);
  const layers = [...new Set(es.filter((e) => e.kind === 'response').map((e) => String(e.args['layer'])))];
  return { name, out, layers };
}

function evidence(o: Outcome, caught?: Catch[]): string {
  return JSON.stringify({ out: o.out.slice(-600), layers: o.layers, caught: caught?.map((c) => c.got) });
}

describe('attacks on the in-kernel kill at sys_exit and at the exec', { skip }, () => {
  let agent: RunningAgent;
  let catcher: Catcher;
  let bin: string;
  let mounts: string[];

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-kattack-bin-'));
    chmodSync(dir, 0o755);
    bin = dir;
    // Static and not position-independent: int 0x80's pointers must lie below 4 GiB.
    execFileSync('cc', ['-O2', '-static', '-no-pie', '-pthread', '-o', join(dir, 'kill-attack'), attackSource]);
    execFileSync('cc', ['-O2', '-static', '-no-pie', '-pthread', '-o', join(dir, 'evasion'), evasionSource]);
    mounts = ['-v', `${bin}:/attack:ro`];
    // The catcher listens on 4444 (a mining pool port) in a namespace of its own.
    catcher = await createCatcher(250 + (process.pid % 5), 'hello\n');
    const pdir = mkdtempSync(join(tmpdir(), 'vigil-kattack-'));
    scoped(pdir, 'files.yaml', FILE, ['  overrides:', '    - rule: read sensitive file', '      action: kill']);
    scoped(pdir, 'mining.yaml', PORT, ['  overrides:', '    - rule: crypto mining', '      action: kill']);
    scoped(pdir, 'exe.yaml', EXE, ['  rules:', '    - name: program run from /tmp',
      '      description: a program executed from /tmp, killed at the exec',
      '      kinds: [exec]',
      "      condition: 'container_code && kind == \"exec\" && process.exe.startsWith(\"/tmp/\")'",
      '      severity: high', '      action: kill']);
    writeFileSync(join(pdir, 'ready.yaml'), ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: ready', 'spec:', '  rules:',
      '    - name: test container ready', '      description: the mark a test container makes when it starts', '      kinds: [exec]',
      "      condition: 'kind == \"exec\" && process.args.exists(a, a == \"vigil-ready\")'", '      severity: low', ''].join('\n'));
    agent = await startAgent([ALERTS_ONLY_LOG, '--policy', pdir, '--no-control-socket']);
  });
  after(async () => {
    try {
      await agent?.stop();
    } finally {
      catcher?.close();
    }
  });

  // ---- read /etc/shadow ----

  async function fileAttack(script: string, image: string = TEST_IMAGES.busybox, dockerArgs: string[] = []): Promise<Outcome> {
    return attack(agent, FILE, image, script, [...mounts, ...dockerArgs]);
  }
  function assertNotRead(o: Outcome): void {
    assert.doesNotMatch(o.out, /LEAKED-|root:/, `bytes of the file were read: ${evidence(o)}`);
  }

  test('chroot /etc (CAP_SYS_CHROOT is a default) then open "/shadow": the path is walked to the mount namespace\'s root, killed', async () => {
    const o = await fileAttack('/attack/evasion chroot-open /etc /shadow; echo "exit $?"');
    assertNotRead(o);
    assert.match(o.out, /exit 137/, evidence(o));
    assert.ok(o.layers.includes('kernel'), evidence(o));
  });

  test('/proc/self/root/etc/shadow and /proc/1/root/etc/shadow: killed at the open', async () => {
    const o = await fileAttack('cat /proc/self/root/etc/shadow; echo "exit $?"; cat /proc/1/root/etc/shadow; echo "exit $?"');
    assertNotRead(o);
    assert.match(o.out, /exit 137\nexit 137/, evidence(o));
  });

  test('O_PATH open, then /proc/self/fd/N reopened for reading: killed at the O_PATH open already', async () => {
    const o = await fileAttack('/attack/kill-attack opath /etc/shadow; echo "exit $?"');
    assertNotRead(o);
    assert.match(o.out, /exit 137/, evidence(o));
  });

  test('open + mmap: killed at the open, the mapping is never read', async () => {
    const o = await fileAttack('/attack/kill-attack mmap /etc/shadow; echo "exit $?"');
    assertNotRead(o);
    assert.match(o.out, /exit 137/, evidence(o));
  });

  test('a thread spinning sendfile(stdout, 3) while another opens /etc/shadow (200 attempts)', {
    todo: 'gets through: 3 to 21 of 200 attempts per run printed the first line of /etc/shadow (the sibling thread\'s sendfile ran between the open\'s fd_install and the kill at sys_exit); every attempt was then killed by the kernel. Needs the decision before fd_install (a hook holding the file: fexit on do_filp_open, or BPF-LSM file_open where active)',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack thread-sendfile /etc/shadow 200; echo "exit $?"');
    assertNotRead(o);
  });

  test('a CLONE_FILES process (not a thread) spinning sendfile(stdout, 3) while its sharer opens /etc/shadow (200 attempts)', {
    todo: 'gets through: 3 to 21 of 200 attempts per run printed the first line of /etc/shadow before the kill (at sys_exit, after fd_install) reached the sibling',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack files-sendfile /etc/shadow 200; echo "exit $?"');
    assertNotRead(o);
  });

  test('a thread moves the opened fd 3 to fd 10 and puts /dev/null at 3 before the open\'s sys_exit looks (200 attempts)', {
    todo: 'gets through: one attempt in 1 to 116 per run printed LEAKED-open-swap (sys_exit reads the path of fd ret, which a sibling replaced with /dev/null; the file lived on at fd 10)',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack open-swap /etc/shadow 200; echo "exit $?"');
    assertNotRead(o);
  });

  test('pidfd_getfd under Docker\'s default seccomp profile: refused (EPERM), nothing taken', async () => {
    const o = await fileAttack('/attack/kill-attack getfd /etc/shadow 3; echo "exit $?"');
    assertNotRead(o);
    assert.match(o.out, /pidfd_getfd: Operation not permitted/, evidence(o));
  });

  test('the parent takes the child\'s fd with pidfd_getfd between the child\'s open and its exit (--cap-add SYS_PTRACE, 200 attempts)', {
    todo: 'gets through with --cap-add SYS_PTRACE: LEAKED-getfd (the first line of /etc/shadow) at attempt 3 of 200, and at attempt 155 with the holders kill; the parent takes the fd after the kill, before the child\'s files are closed at its exit',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack getfd /etc/shadow 200; echo "exit $?"', TEST_IMAGES.busybox, ['--cap-add', 'SYS_PTRACE']);
    assertNotRead(o);
  });

  test('a thread passes the opened fd 3 over a unix socket (SCM_RIGHTS) to a process that shares nothing, before the kill (200 attempts)', {
    todo: 'gets through: LEAKED-scm-pass (the first line of /etc/shadow) at attempt 168 of 200 (5 in another run): the thread\'s sendmsg ran between the open\'s fd_install and the kill; in flight the file is in no table, so the holders kill misses it, and the receiver reads it at leisure',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack scm-pass /etc/shadow 200; echo "exit $?"');
    assertNotRead(o);
  });

  test('io_uring IORING_OP_OPENAT of /etc/shadow, then read(2) of the fd', {
    todo: 'gets through: not decided in the kernel (docs/respond.md); the program printed the first line of /etc/shadow and exited 0 before user space\'s kill (a user-space response record, after the leak)',
  }, async () => {
    const o = await fileAttack('/attack/kill-attack uring-read /etc/shadow; echo "exit $?"');
    assertNotRead(o);
  });

  test('open_by_handle_at of the host file system\'s root (shocker), then openat(root, "etc/shadow") (--cap-add DAC_READ_SEARCH)', {
    todo: 'gets through with --cap-add DAC_READ_SEARCH: LEAKED-shocker, 669 bytes of the HOST\'s /etc/shadow; the path of a file reached from a file system root outside every mount is cut, so no path test holds in the kernel; user space killed after the read (a user-space response record)',
  }, async () => {
    // Reads the HOST's /etc/shadow: only its size and first five bytes are printed.
    const o = await fileAttack('/attack/kill-attack shocker /etc/shadow; echo "exit $?"', TEST_IMAGES.busybox, ['--cap-add', 'DAC_READ_SEARCH']);
    assertNotRead(o);
  });

  test('a hard link to /etc/shadow (ln /etc/shadow /tmp/h), then cat /tmp/h', {
    todo: 'gets through in both layers (the rule is by path): cat /tmp/h printed /etc/shadow\'s first line, nothing was killed (credential file linked or moved only alerts)',
  }, async () => {
    const o = await fileAttack('ln /etc/shadow /tmp/h && cat /tmp/h; echo "exit $?"');
    assertNotRead(o);
  });

  test('mv /etc/shadow /tmp/s, then cat /tmp/s', {
    todo: 'gets through in both layers (the rule is by path): cat /tmp/s printed /etc/shadow\'s first line, nothing was killed',
  }, async () => {
    const o = await fileAttack('mv /etc/shadow /tmp/s && cat /tmp/s; echo "exit $?"');
    assertNotRead(o);
  });

  // ---- send bytes to port 4444 ----

  async function portAttack(script: string, image: string = TEST_IMAGES.busybox): Promise<{ o: Outcome; caught: Catch[] }> {
    const n = catcher.catches().length;
    const o = await attack(agent, PORT, image, script, mounts);
    // Every connection made is closed by the time the container has exited; the catcher
    // reports each on its close. At least one was made by every attack here.
    const made = Number(/attempts (\d+)/.exec(o.out)?.[1] ?? '1');
    const caught = (await catcher.waitFor(n + made, 15_000)).slice(n);
    return { o, caught };
  }
  function assertNotSent(o: Outcome, caught: Catch[]): void {
    assert.ok(!caught.some((c) => c.got.length > 0), `the listener received bytes: ${evidence(o, caught)}`);
  }

  test('a thread writes on the socket while another thread\'s blocking connect completes (50 attempts)', {
    todo: 'gets through, rarely: 1 of 50 attempts delivered SENT-thread-write (2 of 100 in a probe), though the kernel kills at the active open now, before the SYN leaves (the connect returns ERESTARTSYS): the writer thread, already in send() and waiting for the socket lock the connecting thread holds, takes it once the SYN-ACK (queued to the backlog meanwhile) made the socket ESTABLISHED, and queues its bytes, which a pending SIGKILL does not stop; they leave at the close. Needs the socket made unusable, not the process killed',
  }, async () => {
    const { o, caught } = await portAttack(`/attack/kill-attack thread-write ${catcher.address} ${catcher.port} 50; echo "exit $?"`);
    assertNotSent(o, caught);
  });

  test('the socket made before a fork: the child connects and is killed, the parent holding the same socket is killed with it before it writes', async () => {
    const { o, caught } = await portAttack(`/attack/kill-attack fork-socket ${catcher.address} ${catcher.port}; echo "exit $?"`);
    assertNotSent(o, caught);
  });

  test('TCP Fast Open: sendto(MSG_FASTOPEN) opens the connection, no connect(2)', {
    todo: 'gets through: no connect(2), nothing was killed in either layer; the listener received SENT-tfo',
  }, async () => {
    const { o, caught } = await portAttack(`/attack/kill-attack tfo ${catcher.address} ${catcher.port}; echo "exit $?"`);
    assertNotSent(o, caught);
  });

  test('io_uring IORING_OP_CONNECT, then write(2): killed at the socket\'s active open, nothing sent', async () => {
    const { o, caught } = await portAttack(`/attack/kill-attack uring-connect ${catcher.address} ${catcher.port}; echo "exit $?"`);
    assertNotSent(o, caught);
  });

  test('i386 socketcall(SYS_CONNECT) through int 0x80, then an int 0x80 write: killed at the socket\'s active open, nothing sent', async () => {
    const { o, caught } = await portAttack(`/attack/kill-attack socketcall ${catcher.address} ${catcher.port}; echo "exit $?"`);
    assertNotSent(o, caught);
  });

  test('python over AF_INET6 to ::ffff:ADDR: killed at the connect', async () => {
    const { o, caught } = await portAttack(`python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.connect(("::ffff:${catcher.address}", ${catcher.port})); s.send(b"SENT-v6")'; echo "exit $?"`, WORKLOAD_IMAGES.python);
    assertNotSent(o, caught);
    assert.match(o.out, /exit 137/, evidence(o, caught));
  });

  // ---- run a program copied to /tmp ----

  async function exeAttack(script: string, image: string = TEST_IMAGES.busybox): Promise<Outcome> {
    return attack(agent, EXE, image, script, mounts);
  }
  function assertNotRun(o: Outcome): void {
    assert.doesNotMatch(o.out, /FROM-TMP/, `the program from /tmp ran: ${evidence(o)}`);
  }

  test('a symlink /usr/local/bin/echo -> /tmp/echo: the exec is of /tmp/echo, killed', async () => {
    const o = await exeAttack('mkdir -p /usr/local/bin && cp /bin/busybox /tmp/echo && ln -s /tmp/echo /usr/local/bin/echo && /usr/local/bin/echo FROM-TMP; echo "exit $?"');
    assertNotRun(o);
    assert.match(o.out, /exit 137/, evidence(o));
  });

  test('/proc/self/root/tmp/echo and ./echo from /tmp: killed', async () => {
    const o = await exeAttack('cp /bin/busybox /tmp/echo && /proc/self/root/tmp/echo FROM-TMP; echo "exit $?"; cd /tmp && ./echo FROM-TMP; echo "exit $?"');
    assertNotRun(o);
    assert.match(o.out, /exit 137\nexit 137/, evidence(o));
  });

  test('execveat(fd of /tmp/echo, "", AT_EMPTY_PATH) (fexecve): killed', async () => {
    const o = await exeAttack('cp /bin/busybox /tmp/echo && /attack/kill-attack fexec /tmp/echo echo FROM-TMP; echo "exit $?"');
    assertNotRun(o);
    assert.match(o.out, /exit 137/, evidence(o));
  });

  test('chroot /tmp (CAP_SYS_CHROOT), then exec /echo: the path is walked to the mount namespace\'s root, killed', async () => {
    const o = await exeAttack('mkdir -p /tmp/r && cp /bin/busybox /tmp/r/echo && chroot /tmp/r /echo FROM-TMP; echo "exit $?"');
    assertNotRun(o);
    assert.match(o.out, /exit 137/, evidence(o));
  });

  test('a script with a shebang in /tmp', {
    todo: 'gets through in both layers: the exec\'s file is the interpreter (/bin/sh), not /tmp/s; the script printed FROM-TMP',
  }, async () => {
    const o = await exeAttack('printf "#!/bin/sh\\necho FROM-TMP\\n" > /tmp/s && chmod +x /tmp/s && /tmp/s; echo "exit $?"');
    assertNotRun(o);
  });

  test('the program in /tmp run by the dynamic loader: ld.so /tmp/x', {
    todo: 'gets through in both layers: process.exe is /lib64/ld-linux-x86-64.so.2, /tmp/x is only mapped; it printed FROM-TMP',
  }, async () => {
    const o = await exeAttack('cp /bin/echo /tmp/x && /lib64/ld-linux-x86-64.so.2 /tmp/x FROM-TMP; echo "exit $?"', TEST_IMAGES.bash);
    assertNotRun(o);
  });

  test('the program in /tmp copied into a memfd and exec\'d from it', {
    todo: 'gets through in both layers: process.exe is /memfd:payload (deleted); it printed FROM-TMP',
  }, async () => {
    const o = await exeAttack('cp /bin/busybox /tmp/x && /attack/kill-attack memfd-exec /tmp/x echo FROM-TMP; echo "exit $?"');
    assertNotRun(o);
  });

  test('the program 45 directories deep below /tmp (deeper than the kernel\'s path walk): judged by the name execve was given, as user space does, killed', async () => {
    const deep = Array.from({ length: 45 }, () => 'd').join('/');
    const o = await exeAttack(`mkdir -p /tmp/${deep} && cp /bin/busybox /tmp/${deep}/echo && /tmp/${deep}/echo FROM-TMP; echo "exit $?"`);
    assertNotRun(o);
  });

  test('the program 45 directories deep, run by a relative name from its directory', {
    todo: 'gets through in both layers: the path walk is cut and the name execve was given is ./echo, so process.exe is ./echo; it printed FROM-TMP',
  }, async () => {
    const deep = Array.from({ length: 45 }, () => 'd').join('/');
    const o = await exeAttack(`mkdir -p /tmp/${deep} && cp /bin/busybox /tmp/${deep}/echo && cd /tmp/${deep} && ./echo FROM-TMP; echo "exit $?"`);
    assertNotRun(o);
  });

  test('the same program 45 directories deep below /var runs (the cut path is not taken for /tmp)', async () => {
    const deep = Array.from({ length: 45 }, () => 'd').join('/');
    const o = await exeAttack(`mkdir -p /var/${deep} && cp /bin/busybox /var/${deep}/echo && /var/${deep}/echo FROM-VAR; echo "exit $?"`);
    assert.match(o.out, /FROM-VAR\nexit 0/, evidence(o));
    assert.ok(!o.layers.includes('kernel'), evidence(o));
  });
});
