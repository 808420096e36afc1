// Acceptance tests of the default file rules (policies/default/20-files.yaml): for every rule,
// the behaviour it is about, done in a real container under the real agent with the default
// policy and the default capture, gives an INSECURE event naming the rule; a benign near-miss
// gives an event (the kernel's filter lets it through) whose verdict does not name the rule.
// One agent watches every container of the file; the containers run side by side, and each
// test reads the events of its own container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent } from '../helpers/agent-process.js';
import { docker, missingForContainerTests, missingWorkloadImages, TEST_IMAGES, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';
import { brief } from '../helpers/observe.js';

const skip = missingForContainerTests();
const noPython = missingWorkloadImages();

interface Scenario {
  image: string;
  /** Run by `sh -c`; it must exit 0 (expected failures end in `|| true`). */
  script: string;
  dockerArgs?: string[];
}

interface Outcome {
  exitCode: number;
  /** What the agent said (its summary at stop included), for failure messages. */
  agentStderr: string;
  logs: string;
  /** The container's own events (the runtime's set-up left out), in log order. */
  events: VigilEvent[];
  /** How many of them the agent wrote without naming the container. */
  unnamed: number;
}

const lines = (...l: string[]) => l.join('\n');

const SCENARIOS: Record<string, Scenario> = {
  // Account files and credentials, with glibc's coreutils.
  accounts: {
    image: TEST_IMAGES.bash,
    script: lines(
      'set -e',
      'cat /etc/hostname >/dev/null',
      'id >/dev/null',
      'ls -l /etc >/dev/null',
      'id -un >/dev/null',
      'stat -c %U /etc/hostname >/dev/null',
      'ls -l /etc/passwd >/dev/null',
      'cat /etc/passwd >/dev/null',
      'grep root /etc/passwd >/dev/null',
      'cd /etc && cat group >/dev/null && cd /',
      'while read -r line; do :; done < /etc/passwd',
      'cat /etc/shadow >/dev/null',
      'cp /etc/shadow /etc/shadow-',
      'cat /etc/shadow- >/dev/null',
      // A Kubernetes service-account token as the kubelet lays it out: token -> ..data/token,
      // ..data -> a timestamped directory; /var/run -> /run.
      'd=/run/secrets/kubernetes.io/serviceaccount',
      'mkdir -p $d/..2026_12_01_09_00_00.123456789',
      'echo tok > $d/..2026_12_01_09_00_00.123456789/token',
      'ln -s ..2026_12_01_09_00_00.123456789 $d/..data',
      'ln -s ..data/token $d/token',
      'ln -s /run /var/run',
      'cat /var/run/secrets/kubernetes.io/serviceaccount/token >/dev/null',
      'echo pw > /run/secrets/db_password',
      'cat /run/secrets/db_password >/dev/null',
      'mkdir -p /app/.aws /app/.kube /root/.ssh',
      'echo k > /app/.aws/credentials',
      'cat /app/.aws/credentials >/dev/null',
      'echo k > /app/.kube/config',
      'cat /app/.kube/config >/dev/null',
      'echo k > /root/.ssh/id_ed25519',
      'echo p > /root/.ssh/id_ed25519.pub',
      'cat /root/.ssh/id_ed25519.pub >/dev/null',
      'cat /root/.ssh/id_ed25519 >/dev/null',
    ),
  },
  // Busybox: its own user lookups, and applets its shell forks without an exec.
  busybox: {
    image: TEST_IMAGES.busybox,
    script: lines(
      'set -e',
      'id >/dev/null',
      'whoami >/dev/null',
      'ls -l /etc >/dev/null',
      'ls -l /etc/passwd >/dev/null',
      'head -n 1 /etc/passwd >/dev/null',
      'cat /etc/passwd >/dev/null',
      'mkdir -p /var/log',
      'echo line >> /var/log/bb.log',
      'truncate -s 0 /var/log/bb.log',
    ),
  },
  // Files that persist an attacker: programs, setuid bits, cron, the preload list, shell
  // start-up files, SSH keys.
  persist: {
    image: TEST_IMAGES.bash,
    script: lines(
      'set -e',
      'cp /bin/true /tmp/t',
      'echo x > /tmp/x && chmod 0644 /tmp/x && mv /tmp/x /tmp/y && rm /tmp/y',
      'mkdir -p /usr/local/bin',
      'cp /bin/true /usr/local/bin/vigil-dropped',
      'mv /tmp/t /lib/x86_64-linux-gnu/vigil-moved.so',
      'touch /tmp/f',
      'chmod 0755 /tmp/f',
      'chmod u+s /tmp/f',
      'chmod 2755 /tmp/f',
      "echo '* * * * * root id' > /etc/crontab",
      'cat /etc/crontab >/dev/null',
      'mkdir -p /var/spool/cron/crontabs',
      "echo '* * * * * id' > /var/spool/cron/crontabs/root",
      'echo > /etc/ld.so.preload',
      'cat /etc/ld.so.preload >/dev/null',
      'rm /etc/ld.so.preload',
      "echo 'alias ls=id' >> /root/.bashrc",
      'cat /root/.bashrc >/dev/null',
      'echo x > /root/.bashrc.bak',
      'mkdir -p /app /etc/profile.d',
      "echo 'export PATH=/tmp:$PATH' >> /app/.profile",
      'echo x > /etc/profile.d/vigil.sh',
      'mkdir -p /root/.ssh /app/.ssh',
      'echo key >> /root/.ssh/authorized_keys',
      'echo key > /app/.ssh/authorized_keys2',
      'cat /root/.ssh/authorized_keys >/dev/null',
      'echo host > /root/.ssh/known_hosts',
    ),
  },
  // Logs and shell histories.
  logs: {
    image: TEST_IMAGES.bash,
    script: lines(
      'set -e',
      'mkdir -p /var/log/app /home/u',
      'echo line >> /var/log/app/app.log',
      'true > /var/log/app/app.log',
      'echo line >> /var/log/app/old.log',
      'rm /var/log/app/old.log',
      'ln -sf /dev/null /root/.bash_history',
      // The first interactive session creates its history; the next one wipes it.
      "echo 'echo hi' | HOME=/home/u bash -i >/dev/null 2>&1",
      "printf 'history -c\\nhistory -w\\n' | HOME=/home/u bash -i >/dev/null 2>&1",
    ),
  },
  // /proc: environments and memory of processes, kernel settings; Docker's read-only /proc/sys and /sys.
  proc: {
    image: TEST_IMAGES.bash,
    script: lines(
      'set -e',
      'sleep 60 & s=$!',
      'cat /proc/self/environ >/dev/null',
      'cat /proc/thread-self/environ >/dev/null',
      'cat /proc/$s/environ >/dev/null',
      'cat /proc/$s/task/$s/environ >/dev/null',
      'head -c 1 /proc/$s/mem >/dev/null 2>&1 || true',
      'kill $s',
      'cat /proc/sys/kernel/hostname >/dev/null',
      'echo vigil > /proc/sys/kernel/hostname 2>/dev/null || true',
      'echo 1000 > /sys/class/net/lo/tx_queue_len 2>/dev/null || true',
    ),
  },
  // A writable /proc/sys (the container's own UTS namespace) and a cgroup v1 hierarchy mounted
  // in the container: the release_agent escape, up to the open (nothing is written to it).
  kernel: {
    image: TEST_IMAGES.busybox,
    dockerArgs: ['--cap-add', 'SYS_ADMIN', '--security-opt', 'systempaths=unconfined'],
    script: lines(
      'set -e',
      'echo vigil-rw > /proc/sys/kernel/hostname',
      'mkdir -p /tmp/cg',
      'if mount -t cgroup -o none,name=vigil-files-test cgroup /tmp/cg; then',
      '  exec 3>>/tmp/cg/release_agent',
      '  exec 3>&-',
      '  cat /tmp/cg/release_agent >/dev/null',
      '  umount /tmp/cg',
      'else echo NO-CGROUP-MOUNT; fi',
    ),
  },
  // Python opens every file with O_CLOEXEC; its threads share the process's /proc/self.
  python: {
    image: WORKLOAD_IMAGES.python,
    script: lines(
      'set -e',
      `python3 -c "print(open('/etc/passwd').read())" >/dev/null`,
      `python3 -c "import pwd; pwd.getpwnam('root')"`,
      `python3 -c "open('/etc/shadow', 'r+').read()"`,
      'sleep 60 & s=$!',
      `python3 -c "open('/proc/$s/environ', 'rb').read()"`,
      'kill $s',
      `python3 -c "
import threading
def own():
    open('/proc/self/environ', 'rb').read()
    open('/proc/thread-self/environ', 'rb').read()
t = threading.Thread(target=own)
t.start()
t.join()"`,
    ),
  },
};

/** The first line of a scenario's script: names it in its init's command line. */
const marker = (key: string) => `: vigil-files-${key}`;

async function runAll(scenarios: Record<string, Scenario>): Promise<Record<string, Outcome>> {
  const agent = await startAgent();
  const started: Array<{ key: string; name: string; id: string }> = [];
  const done: Record<string, { id: string; exitCode: number; logs: string }> = {};
  try {
    for (const [key, s] of Object.entries(scenarios)) {
      const name = uniqueName(`vigil-files-${key}`);
      const id = docker('run', '-d', '--pull', 'never', ...(s.dockerArgs ?? []), '--name', name, s.image, 'sh', '-c', `${marker(key)}\n${s.script}`);
      started.push({ key, name, id });
    }
    for (const { key, name, id } of started) {
      const exitCode = Number(docker('wait', name));
      const out = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
      done[key] = { id, exitCode, logs: `${out.stdout}${out.stderr}` };
    }
  } catch (e) {
    await agent.stop();
    throw e;
  } finally {
    for (const { name } of started) spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  }
  // As observe() does: a moment for the agent to take the last records before it stops (it drains the rest).
  await new Promise((r) => setTimeout(r, 300));
  const { code, events } = await agent.stop();
  assert.equal(code, 0, agent.stderr());
  const out: Record<string, Outcome> = {};
  for (const [key, d] of Object.entries(done)) {
    // A container that ends before the agent has looked its cgroup up (a busy machine) has events
    // without a container (id ''). Its own init (sh -c SCRIPT, the script's first line names the
    // scenario) gives its container key, which those events carry too.
    const init = events.find((e) => e.kind === 'exec' && (e.container.id === d.id || e.container.id === '') && e.process.args[1] === '-c' && e.process.args[2]?.startsWith(`${marker(key)}\n`));
    const ckey = init?.namespaces.containerKey;
    const own = (e: VigilEvent) => e.container.id === d.id || (e.container.id === '' && ckey !== undefined && e.namespaces.containerKey === ckey);
    out[key] = { exitCode: d.exitCode, agentStderr: agent.stderr(), logs: d.logs, events: events.filter((e) => own(e) && !e.process.containerSetup), unnamed: events.filter((e) => own(e) && e.container.id === '').length };
  }
  const unnamed = Object.entries(out).filter(([, o]) => o.unnamed > 0).map(([k, o]) => `${k}: ${o.unnamed}`);
  if (unnamed.length > 0) process.stderr.write(`events the agent wrote without their container (known by their container key): ${unnamed.join(', ')}\n`);
  return out;
}

let outcomes: Promise<Record<string, Outcome>> | undefined;

/** The events of one scenario's container (every scenario runs once, on first use). */
async function scenario(key: string): Promise<VigilEvent[]> {
  const chosen = noPython ? Object.fromEntries(Object.entries(SCENARIOS).filter(([k]) => k !== 'python')) : SCENARIOS;
  outcomes ??= runAll(chosen);
  const o = (await outcomes)[key];
  assert.ok(o, `scenario ${key} did not run`);
  assert.equal(o.exitCode, 0, `scenario ${key} failed:\n${o.logs}`);
  const files = o.events.filter((e) => e.kind === 'file');
  assert.ok(files.length > 0, `scenario ${key}: the agent wrote no file event of its container (${o.events.length} events); the agent said:\n${o.agentStderr}`);
  return files;
}

async function logsOf(key: string): Promise<string> {
  return (await outcomes)?.[key]?.logs ?? '';
}

interface Match {
  comm?: string;
  syscall?: string | RegExp;
  path?: string;
  newPath?: string;
  flags?: RegExp;
  error?: string;
}

function matches(e: VigilEvent, m: Match): boolean {
  if (m.comm !== undefined && e.process.comm !== m.comm) return false;
  if (m.syscall !== undefined && !(typeof m.syscall === 'string' ? e.syscall === m.syscall : m.syscall.test(e.syscall))) return false;
  if (m.path !== undefined && e.args['path'] !== m.path) return false;
  if (m.newPath !== undefined && e.args['new_path'] !== m.newPath) return false;
  if (m.flags !== undefined && !m.flags.test(String(e.args['flags'] ?? ''))) return false;
  if (m.error !== undefined && (e.error ?? '') !== m.error) return false;
  return true;
}

function describeMatch(m: Match): string {
  return JSON.stringify(m, (_k, v: unknown) => (v instanceof RegExp ? v.source : v));
}

/** Every event the match selects; at least one must exist. */
function all(events: VigilEvent[], what: string, m: Match): VigilEvent[] {
  const found = events.filter((e) => matches(e, m));
  assert.ok(found.length > 0, `${what}: no event ${describeMatch(m)} among ${brief(events)}`);
  return found;
}

const verdictOf = (e: VigilEvent) => `${e.verdict.level} ${JSON.stringify(e.verdict.rules)} (${e.syscall} ${JSON.stringify(e.args)} by ${e.process.comm} ${JSON.stringify(e.process.args)})`;

/** The behaviour: an event that matches, INSECURE and naming the rule. */
function insecure(events: VigilEvent[], rule: string, what: string, m: Match): VigilEvent {
  const found = all(events, what, m);
  const hit = found.find((e) => e.verdict.level === 'INSECURE' && e.verdict.rules.includes(rule));
  assert.ok(hit, `${what}: expected INSECURE [${rule}], got ${found.map(verdictOf).join('; ')}`);
  return hit;
}

/** The near-miss: events that match exist, and none names the rule. */
function notFlagged(events: VigilEvent[], rule: string, what: string, m: Match): VigilEvent[] {
  const found = all(events, what, m);
  const hits = found.filter((e) => e.verdict.rules.includes(rule));
  assert.deepEqual(hits.map(verdictOf), [], `${what}: should stay NORMAL for '${rule}'`);
  return found;
}

const READ = /O_RDONLY/;
const CLOEXEC = /O_CLOEXEC/;

test("opening passwd (glibc): cat and grep of /etc/passwd, cat of a relative name, a shell's redirection are INSECURE; id, ls -l, id -un, stat's lookups stay NORMAL", { skip }, async () => {
  const ev = await scenario('accounts');
  const rule = 'opening passwd';
  insecure(ev, rule, 'cat /etc/passwd', { comm: 'cat', path: '/etc/passwd', flags: READ });
  insecure(ev, rule, 'grep root /etc/passwd', { comm: 'grep', path: '/etc/passwd' });
  insecure(ev, rule, 'cd /etc && cat group', { comm: 'cat', path: '/etc/group' });
  insecure(ev, rule, 'the shell reading < /etc/passwd', { comm: 'sh', path: '/etc/passwd', flags: /^0\(O_RDONLY\)$/ });
  notFlagged(ev, rule, 'cat /etc/hostname', { comm: 'cat', path: '/etc/hostname' });
  // The C library's lookups: O_CLOEXEC, and the file is not on the command line (but on ls's).
  for (const comm of ['id', 'ls', 'stat']) {
    const lookups = notFlagged(ev, rule, `${comm}'s user lookups`, { comm, path: '/etc/passwd' });
    assert.ok(lookups.every((e) => CLOEXEC.test(String(e.args['flags']))), `glibc's lookups open with O_CLOEXEC: ${brief(lookups)}`);
  }
  // The shell looks its user up while its script names the file.
  notFlagged(ev, rule, "the shell's own lookup", { comm: 'sh', path: '/etc/passwd', flags: CLOEXEC });
});

test('opening passwd (busybox): cat and head of /etc/passwd are INSECURE; id, whoami, ls -l /etc and ls -l /etc/passwd stay NORMAL', { skip }, async () => {
  const ev = await scenario('busybox');
  const rule = 'opening passwd';
  insecure(ev, rule, 'cat /etc/passwd', { comm: 'cat', path: '/etc/passwd' });
  // head runs in a child the shell forked without exec: its command line is the script.
  const head = insecure(ev, rule, 'head -n 1 /etc/passwd', { comm: 'head', path: '/etc/passwd' });
  assert.equal(head.process.args[0], 'sh', 'a busybox applet forked by the shell keeps the shell\'s command line');
  // Busybox looks users up without O_CLOEXEC, and the script (their command line) names the file.
  for (const comm of ['id', 'whoami', 'ls']) {
    const lookups = notFlagged(ev, rule, `busybox ${comm}`, { comm, path: '/etc/passwd' });
    assert.ok(lookups.some((e) => !CLOEXEC.test(String(e.args['flags']))), `busybox opens without O_CLOEXEC: ${brief(lookups)}`);
  }
});

test('opening passwd (python): open() of /etc/passwd is INSECURE although Python opens with O_CLOEXEC; pwd.getpwnam stays NORMAL', { skip: skip ?? noPython }, async () => {
  const ev = await scenario('python');
  const rule = 'opening passwd';
  const read = insecure(ev, rule, "python3 -c open('/etc/passwd')", { comm: 'python3', path: '/etc/passwd' });
  assert.match(String(read.args['flags']), CLOEXEC);
  const lookup = ev.filter((e) => e.process.args.join(' ').includes('getpwnam'));
  notFlagged(lookup, rule, 'pwd.getpwnam', { path: '/etc/passwd' });
});

test('read sensitive file: shadow, its backup, a service-account token through its symlinks, cloud and SSH keys are INSECURE; a public key and a Docker secret stay NORMAL', { skip }, async () => {
  const ev = await scenario('accounts');
  const rule = 'read sensitive file';
  insecure(ev, rule, 'cat /etc/shadow', { comm: 'cat', path: '/etc/shadow' });
  insecure(ev, rule, 'cp /etc/shadow', { comm: 'cp', path: '/etc/shadow', flags: READ });
  insecure(ev, rule, 'cat /etc/shadow-', { comm: 'cat', path: '/etc/shadow-' });
  const token = insecure(ev, rule, 'the token', { comm: 'cat', syscall: /^open/, path: '/run/secrets/kubernetes.io/serviceaccount/..2026_12_01_09_00_00.123456789/token' });
  assert.equal(token.args['name'], '/var/run/secrets/kubernetes.io/serviceaccount/token');
  insecure(ev, rule, 'cat /app/.aws/credentials', { comm: 'cat', path: '/app/.aws/credentials' });
  insecure(ev, rule, 'cat /app/.kube/config', { comm: 'cat', path: '/app/.kube/config' });
  insecure(ev, rule, 'cat /root/.ssh/id_ed25519', { comm: 'cat', path: '/root/.ssh/id_ed25519' });
  notFlagged(ev, rule, 'cat /root/.ssh/id_ed25519.pub', { comm: 'cat', path: '/root/.ssh/id_ed25519.pub' });
  notFlagged(ev, rule, 'cat /run/secrets/db_password', { comm: 'cat', path: '/run/secrets/db_password' });
  // Writing a key is not reading one.
  notFlagged(ev, rule, 'the shell writing /root/.ssh/id_ed25519', { comm: 'sh', path: '/root/.ssh/id_ed25519', flags: /O_WRONLY/ });
});

test('read sensitive file (python): /etc/shadow opened read-write is INSECURE', { skip: skip ?? noPython }, async () => {
  const ev = await scenario('python');
  const e = insecure(ev, 'read sensitive file', "open('/etc/shadow', 'r+')", { comm: 'python3', path: '/etc/shadow' });
  assert.match(String(e.args['flags']), /O_RDWR/);
});

test('write below binary directory: a program copied into /usr/local/bin and a file moved into /lib are INSECURE; reading /bin/true and changing files in /tmp stay NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'write below binary directory';
  insecure(ev, rule, 'cp /bin/true /usr/local/bin/vigil-dropped', { comm: 'cp', syscall: /^open/, path: '/usr/local/bin/vigil-dropped', flags: /O_WRONLY/ });
  insecure(ev, rule, 'mv /tmp/t /lib/…/vigil-moved.so', { comm: 'mv', syscall: /^rename/, newPath: '/lib/x86_64-linux-gnu/vigil-moved.so' });
  notFlagged(ev, rule, 'cp reading /bin/true', { comm: 'cp', path: '/bin/true', flags: READ });
  // The kernel does not send opens of /tmp (unwatched); the calls that change a file by name it does.
  notFlagged(ev, rule, 'chmod 0644 /tmp/x', { comm: 'chmod', path: '/tmp/x' });
  notFlagged(ev, rule, 'mv /tmp/x /tmp/y', { comm: 'mv', syscall: /^rename/, path: '/tmp/x' });
  notFlagged(ev, rule, 'rm /tmp/y', { comm: 'rm', syscall: /^unlink/, path: '/tmp/y' });
});

test('set setuid or setgid bit: chmod u+s and chmod 2755 are INSECURE; chmod 0755 stays NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'set setuid or setgid bit';
  const chmods = ev.filter((e) => e.process.comm === 'chmod' && e.args['path'] === '/tmp/f');
  const byArg = (a: string) => chmods.filter((e) => e.process.args[1] === a);
  insecure(byArg('u+s'), rule, 'chmod u+s', { syscall: /chmod/ });
  insecure(byArg('2755'), rule, 'chmod 2755', { syscall: /chmod/ });
  const plain = notFlagged(byArg('0755'), rule, 'chmod 0755', { syscall: /chmod/ });
  assert.equal(plain[0]!.args['mode'], '0755');
});

test('persistence through cron: writing /etc/crontab and a user crontab is INSECURE; reading /etc/crontab stays NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'persistence through cron';
  insecure(ev, rule, 'echo > /etc/crontab', { comm: 'sh', path: '/etc/crontab', flags: /O_WRONLY/ });
  insecure(ev, rule, 'echo > /var/spool/cron/crontabs/root', { comm: 'sh', path: '/var/spool/cron/crontabs/root', flags: /O_WRONLY/ });
  notFlagged(ev, rule, 'cat /etc/crontab', { comm: 'cat', path: '/etc/crontab', flags: READ });
});

test('persistence through ld.so.preload: writing and removing /etc/ld.so.preload are INSECURE; the loader and cat reading it stay NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'persistence through ld.so.preload';
  insecure(ev, rule, 'echo > /etc/ld.so.preload', { comm: 'sh', path: '/etc/ld.so.preload', flags: /O_WRONLY/ });
  insecure(ev, rule, 'rm /etc/ld.so.preload', { comm: 'rm', syscall: /^unlink/, path: '/etc/ld.so.preload' });
  // Every dynamic program started while it exists reads it (O_CLOEXEC: the loader), cat twice.
  notFlagged(ev, rule, 'the loader reading it', { comm: 'cat', path: '/etc/ld.so.preload', flags: CLOEXEC });
  notFlagged(ev, rule, 'cat /etc/ld.so.preload', { comm: 'cat', path: '/etc/ld.so.preload', flags: /^0\(O_RDONLY\)$/ });
});

test('persistence through shell profile: appending to /root/.bashrc, to a .profile outside /root and /home, writing /etc/profile.d are INSECURE; reading .bashrc and writing .bashrc.bak stay NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'persistence through shell profile';
  insecure(ev, rule, '>> /root/.bashrc', { comm: 'sh', path: '/root/.bashrc', flags: /O_APPEND/ });
  insecure(ev, rule, '>> /app/.profile', { comm: 'sh', path: '/app/.profile', flags: /O_APPEND/ });
  insecure(ev, rule, '> /etc/profile.d/vigil.sh', { comm: 'sh', path: '/etc/profile.d/vigil.sh' });
  notFlagged(ev, rule, 'cat /root/.bashrc', { comm: 'cat', path: '/root/.bashrc' });
  notFlagged(ev, rule, '> /root/.bashrc.bak', { comm: 'sh', path: '/root/.bashrc.bak' });
});

test('ssh authorized_keys modified: appending to /root/.ssh/authorized_keys and writing authorized_keys2 elsewhere are INSECURE; reading it and writing known_hosts stay NORMAL', { skip }, async () => {
  const ev = await scenario('persist');
  const rule = 'ssh authorized_keys modified';
  insecure(ev, rule, '>> /root/.ssh/authorized_keys', { comm: 'sh', path: '/root/.ssh/authorized_keys', flags: /O_APPEND/ });
  insecure(ev, rule, '> /app/.ssh/authorized_keys2', { comm: 'sh', path: '/app/.ssh/authorized_keys2' });
  notFlagged(ev, rule, 'cat /root/.ssh/authorized_keys', { comm: 'cat', path: '/root/.ssh/authorized_keys' });
  notFlagged(ev, rule, '> /root/.ssh/known_hosts', { comm: 'sh', path: '/root/.ssh/known_hosts' });
});

test('log or history tampering: truncating and removing a log, ln -sf /dev/null ~/.bash_history, history -c + history -w are INSECURE; appending to a log and bash creating its history stay NORMAL', { skip }, async () => {
  const ev = await scenario('logs');
  const rule = 'log or history tampering';
  notFlagged(ev, rule, '>> /var/log/app/app.log', { comm: 'sh', path: '/var/log/app/app.log', flags: /O_APPEND/ });
  insecure(ev, rule, 'true > /var/log/app/app.log', { comm: 'sh', path: '/var/log/app/app.log', flags: /O_TRUNC/ });
  insecure(ev, rule, 'rm /var/log/app/old.log', { comm: 'rm', syscall: /^unlink/, path: '/var/log/app/old.log' });
  const link = insecure(ev, rule, 'ln -sf /dev/null /root/.bash_history', { comm: 'ln', syscall: /^symlink/, path: '/root/.bash_history' });
  assert.equal(link.args['target'], '/dev/null');
  // The first session: bash creates the file (O_TRUNC, mode 0600) and appends its lines.
  const first = ev.filter((e) => e.process.comm === 'bash' && e.args['path'] === '/home/u/.bash_history' && /O_WRONLY/.test(String(e.args['flags'] ?? '')));
  const created = notFlagged(first, rule, 'bash creating ~/.bash_history', { flags: /O_TRUNC/ });
  assert.equal(created[0]!.args['mode'], '0600');
  notFlagged(first, rule, 'bash appending to ~/.bash_history', { flags: /O_APPEND/ });
  // The second: history -w writes a temporary file and renames it over the history.
  insecure(ev, rule, 'history -c; history -w', { comm: 'bash', syscall: /^rename/, newPath: '/home/u/.bash_history' });
});

test('log or history tampering (busybox): truncate -s 0 of a log is INSECURE; appending to it stays NORMAL', { skip }, async () => {
  const ev = await scenario('busybox');
  const rule = 'log or history tampering';
  notFlagged(ev, rule, '>> /var/log/bb.log', { comm: 'sh', path: '/var/log/bb.log', flags: /O_APPEND/ });
  insecure(ev, rule, 'truncate -s 0 /var/log/bb.log', { comm: 'truncate', syscall: /truncate$/, path: '/var/log/bb.log' });
});

test("read other process environment: another process's /proc/PID/environ, its thread's, and its mem are INSECURE; /proc/self/environ and /proc/thread-self/environ stay NORMAL", { skip }, async () => {
  const ev = await scenario('proc');
  const rule = 'read other process environment';
  const environ = /^\/proc\/\d+\/environ$/;
  const cats = ev.filter((e) => e.process.comm === 'cat' && /^open/.test(e.syscall));
  const other = cats.filter((e) => environ.test(String(e.args['path'])) && e.args['name'] !== '/proc/self/environ');
  insecure(other, rule, 'cat /proc/$s/environ', {});
  insecure(cats.filter((e) => /^\/proc\/\d+\/task\/\d+\/environ$/.test(String(e.args['name']))), rule, 'cat /proc/$s/task/$s/environ', {});
  insecure(ev.filter((e) => e.process.comm === 'head' && /^\/proc\/\d+\/mem$/.test(String(e.args['path']))), rule, 'head /proc/$s/mem', {});
  const self = notFlagged(cats.filter((e) => e.args['name'] === '/proc/self/environ'), rule, 'cat /proc/self/environ', {});
  assert.equal(self[0]!.args['path'], `/proc/${self[0]!.process.nsPid}/environ`, 'the kernel path names the reader');
  notFlagged(cats.filter((e) => e.args['name'] === '/proc/thread-self/environ'), rule, 'cat /proc/thread-self/environ', {});
});

test("read other process environment (python): another process's environ is INSECURE; a thread reading /proc/self/environ and /proc/thread-self/environ stays NORMAL", { skip: skip ?? noPython }, async () => {
  const ev = await scenario('python');
  const rule = 'read other process environment';
  const py = ev.filter((e) => e.process.comm === 'python3' && /^open/.test(e.syscall));
  insecure(py.filter((e) => /^\/proc\/\d+\/environ$/.test(String(e.args['name']))), rule, "open('/proc/$s/environ')", {});
  const own = py.filter((e) => e.args['name'] === '/proc/self/environ' || e.args['name'] === '/proc/thread-self/environ');
  assert.equal(own.length, 2, `the thread's two opens: ${brief(own)}`);
  notFlagged(own, rule, 'a thread reading its own environment', {});
  const threadSelf = own.find((e) => e.args['name'] === '/proc/thread-self/environ')!;
  assert.match(String(threadSelf.args['path']), new RegExp(`^/proc/${threadSelf.process.nsPid}/task/\\d+/environ$`));
});

test('write to proc or sys: writes to read-only /proc/sys and /sys that fail with EROFS are INSECURE; reading /proc/sys/kernel/hostname stays NORMAL', { skip }, async () => {
  const ev = await scenario('proc');
  const rule = 'write to proc or sys';
  insecure(ev, rule, 'echo > /proc/sys/kernel/hostname', { path: '/proc/sys/kernel/hostname', flags: /O_WRONLY/, error: 'EROFS' });
  insecure(ev, rule, 'echo > /sys/class/net/lo/tx_queue_len', { path: '/sys/class/net/lo/tx_queue_len', flags: /O_WRONLY/, error: 'EROFS' });
  notFlagged(ev, rule, 'cat /proc/sys/kernel/hostname', { comm: 'cat', path: '/proc/sys/kernel/hostname', flags: READ });
});

test('write to proc or sys: a write to a writable /proc/sys and the open of a mounted cgroup hierarchy\'s release_agent for writing are INSECURE; reading release_agent stays NORMAL', { skip }, async (t) => {
  const ev = await scenario('kernel');
  const rule = 'write to proc or sys';
  const ok = insecure(ev, rule, 'echo vigil-rw > /proc/sys/kernel/hostname', { path: '/proc/sys/kernel/hostname', flags: /O_WRONLY/ });
  assert.ok(typeof ok.ret === 'number' && ok.ret >= 0, `the write succeeded: ${verdictOf(ok)}`);
  if ((await logsOf('kernel')).includes('NO-CGROUP-MOUNT')) {
    t.skip('a cgroup v1 hierarchy cannot be mounted in a container here');
    return;
  }
  insecure(ev, rule, 'exec 3>>/tmp/cg/release_agent', { path: '/tmp/cg/release_agent', flags: /O_WRONLY/ });
  notFlagged(ev, rule, 'cat /tmp/cg/release_agent', { comm: 'cat', path: '/tmp/cg/release_agent', flags: READ });
});
