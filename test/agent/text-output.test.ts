// The agent's own `text:` output, beside its JSON lines, for one real container: every
// event is one line in the paper's format, written literally here (not by the renderer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe, tempDir, type Observed } from '../helpers/observe.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

const HOST = 'vigil-text-host';
const PORT = 7401;
/** Docker's default effective set, lowest bit first. */
const DOCKER_CAPS = 'CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP';

/** Local wall-clock time of an event's epoch nanoseconds, as the paper prints it. */
function localTime(ns: string): string {
  const d = new Date(Number(BigInt(ns) / 1_000_000n));
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Runs a container under an agent writing both jsonl and text; returns the run and the text lines. */
async function runWithText(script: string, dockerArgs: string[] = []): Promise<{ run: Observed; all: VigilEvent[]; lines: string[] }> {
  const textPath = join(tempDir('vigil-text'), 'events.txt');
  const run = await observe([[NO_POLICY, '--output', `text:${textPath}`, '--host', HOST]], { image: TEST_IMAGES.bash, script, dockerArgs, namePrefix: 'vigil-text' });
  const text = readFileSync(textPath, 'utf8');
  assert.ok(text.endsWith('\n'), 'the text file ends with a newline');
  return { run, all: run.agents[0]!.all, lines: text.slice(0, -1).split('\n') };
}

test('text output: openat, exec, fork, exit, connect, TCP state, accept, chmod u+s and a capability check as paper lines', { skip }, async () => {
  // busybox (from the host, static) listens; bash connects through /dev/tcp.
  const script = [
    `busybox nc -l -p ${PORT} >/dev/null & sleep 0.3`,
    'cat /etc/passwd >/dev/null',
    'cd /etc && cat passwd >/dev/null',
    'cd /',
    `exec 3<>/dev/tcp/127.0.0.1/${PORT}`,
    'echo hi >&3',
    'exec 3>&-',
    'touch /tmp/s',
    'chmod u+s /tmp/s',
    'chown 1 /tmp/s',
    '(exit 3)',
    'wait',
    'true',
  ].join('; ');
  const { run, all, lines } = await runWithText(script, ['-v', '/bin/busybox:/bin/busybox:ro']);
  assert.equal(run.exitCode, 0, run.logs);
  // Both outputs carry the same events in the same order. (Other tests' containers may
  // be running too: only this container's lines are paired with its events.)
  const ours = all.filter((e) => e.container.id === run.id);
  const ourLines = lines.filter((l) => l.includes(`, Container:{image: vigil-test/bash:2, id: ${run.id.slice(0, 12)}, name: ${run.name}}, `));
  assert.equal(ourLines.length, ours.length, 'one text line per event');
  const events = run.agents[0]!.events;
  const lineOf = (e: VigilEvent) => ourLines[ours.indexOf(e)]!;
  const find = (what: string, pred: (e: VigilEvent) => boolean): VigilEvent => {
    const e = events.find(pred);
    assert.ok(e, `no ${what}: ${brief(events)}`);
    return e;
  };
  const initArgs = `sh -c ${script}`;
  const init = find('exec of the init', (e) => e.kind === 'exec' && e.process.nsPid === 1);
  const shim = init.process.parent;
  const container = `Container:{image: vigil-test/bash:2, id: ${run.id.slice(0, 12)}, name: ${run.name}}`;
  const expect = (e: VigilEvent, event: string, proc: string, parent: string, args: string) => {
    assert.equal(lineOf(e), `${localTime(e.time)} [NORMAL] Event:{host:${HOST}, ${event}, time: ${e.time}}, ${container}, Process:{proc: ${proc}, exe: ${e.process.exe}, pid: ${e.process.pid}, parent: ${parent}, args: ${args}, caps: ${DOCKER_CAPS}}`);
  };

  // cat /etc/passwd: its exec and its open.
  const catExec = find('exec of cat /etc/passwd', (e) => e.kind === 'exec' && e.process.args.join(' ') === 'cat /etc/passwd');
  expect(catExec, 'syscall: execve, args:filename=/bin/cat argv=cat /etc/passwd, ret: 0', 'cat', 'sh', 'cat /etc/passwd');
  const open = find('openat of /etc/passwd by cat', (e) => e.syscall === 'openat' && e.process.comm === 'cat' && e.args['name'] === '/etc/passwd');
  assert.ok(typeof open.ret === 'number' && open.ret >= 3);
  expect(open, `syscall: openat, args:dirfd=-100(AT_FDCWD) name=/etc/passwd flags=0(O_RDONLY) mode=0, ret: ${open.ret}`, 'cat', 'sh', 'cat /etc/passwd');
  // A relative name shows its absolute path as the paper does: name=passwd(/etc/passwd).
  const rel = find('openat of passwd', (e) => e.syscall === 'openat' && e.process.comm === 'cat' && e.args['name'] === 'passwd');
  expect(rel, `syscall: openat, args:dirfd=-100(AT_FDCWD) name=passwd(/etc/passwd) flags=0(O_RDONLY) mode=0, ret: ${rel.ret}`, 'cat', 'sh', 'cat passwd');

  // The TCP connect by the shell, its state change, and the listener's accept.
  const connect = find('connect', (e) => e.syscall === 'connect' && e.args['addr'] === `127.0.0.1:${PORT}`);
  const local = String(connect.args['sock_local']);
  assert.match(local, /^127\.0\.0\.1:\d+$/);
  expect(connect, `syscall: connect, args:fd=3 addrlen=16 sock_family=AF_INET sock_type=SOCK_STREAM sock_protocol=TCP sock_local=${local} sock_remote=127.0.0.1:${PORT} addr_family=AF_INET addr=127.0.0.1:${PORT} port=${PORT}, ret: 0`, 'sh', shim, initArgs);
  const established = find('SYN_SENT>ESTABLISHED', (e) => e.kind === 'tcp' && e.args['newstate'] === 'ESTABLISHED' && e.args['remote'] === `127.0.0.1:${PORT}`);
  expect(established, `syscall: inet_sock_set_state, args:oldstate=SYN_SENT newstate=ESTABLISHED family=AF_INET type=SOCK_STREAM protocol=TCP local=${local} remote=127.0.0.1:${PORT}`, 'sh', shim, initArgs);
  const accept = find('accept', (e) => (e.syscall === 'accept' || e.syscall === 'accept4') && e.process.comm === 'busybox');
  const peerPort = local.split(':')[1];
  assert.equal(accept.syscall, 'accept');
  expect(accept, `syscall: accept, args:fd=3 sock_family=AF_INET6 sock_type=SOCK_STREAM sock_protocol=TCP sock_local=[::ffff:127.0.0.1]:${PORT} sock_remote=[::ffff:127.0.0.1]:${peerPort}, ret: ${accept.ret}`, 'busybox', 'sh', `busybox nc -l -p ${PORT}`);

  // chmod u+s: the setuid bit decoded; chown: the capability check.
  const chmod = find('fchmodat by chmod', (e) => e.syscall === 'fchmodat' && e.process.comm === 'chmod');
  expect(chmod, 'syscall: fchmodat, args:dirfd=-100(AT_FDCWD) name=/tmp/s mode=04644(S_ISUID), ret: 0', 'chmod', 'sh', 'chmod u+s /tmp/s');
  const cap = find('CAP_CHOWN check', (e) => e.kind === 'capability' && e.process.comm === 'chown' && e.args['capability'] === 'CHOWN');
  expect(cap, 'syscall: capable, args:cap=0(CAP_CHOWN) capability=CHOWN granted=true, ret: 0', 'chown', 'sh', 'chown 1 /tmp/s');

  // (exit 3): the init forks a subshell that exits with 3 without exec.
  const sub = events.filter((e) => e.kind === 'exit' && e.args['code'] === 3);
  assert.equal(sub.length, 1, brief(sub));
  const exit3 = sub[0]!;
  const fork = find('fork of the subshell', (e) => e.kind === 'fork' && e.args['child_pid'] === exit3.process.pid);
  expect(fork, `syscall: fork, args:child_pid=${exit3.process.pid} child_ns_pid=${exit3.process.nsPid}, ret: ${exit3.process.pid}`, 'sh', shim, initArgs);
  expect(exit3, 'syscall: exit, args:code=3 signal=0', 'sh', 'sh', initArgs);
  const initExit = find('exit of the init', (e) => e.kind === 'exit' && e.process.pid === init.process.pid);
  expect(initExit, 'syscall: exit, args:code=0 signal=0', 'sh', shim, initArgs);

  // Every line of the container has the paper's shape.
  const shape = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[NORMAL\] Event:\{host:vigil-text-host, syscall: [a-z_0-9]+, args:.*, time: \d{19}\}, Container:\{image: vigil-test\/bash:2, id: [0-9a-f]{12}, name: vigil-text-[^,]+\}, Process:\{proc: [^,]+, exe: [^,]+, pid: \d+, parent: [^,]*, args: .*, caps: [A-Z_,]*\}$/;
  for (const e of events) assert.match(lineOf(e), shape);
});

// A newline in argv, names or comm would end the line, and what follows would read as
// another event: renderText escapes them.
test('text output: a newline in argv neither splits the event nor forges a line', { skip }, async () => {
  const forged = '2020/01/01 00:00:00 [NORMAL] Event:{host:forged';
  const script = `/bin/echo $'x\\n${forged}, syscall: openat}' >/dev/null; true`;
  const { run, lines } = await runWithText(script);
  assert.equal(run.exitCode, 0, run.logs);
  const echo = run.agents[0]!.events.find((e) => e.kind === 'exec' && e.args['filename'] === '/bin/echo');
  assert.ok(echo, 'no exec of echo');
  assert.equal(echo.process.args[1], `x\n${forged}, syscall: openat}`, 'the JSON line keeps the newline');
  assert.deepEqual(lines.filter((l) => l.startsWith(forged)), [], 'a container wrote a line of its own into the text log');
  // The exec's line holds the whole event, from its time stamp to its caps.
  const own = lines.filter((l) => l.includes(`, time: ${echo.time}}, `));
  assert.equal(own.length, 1);
  assert.ok(own[0]!.startsWith(`${localTime(echo.time)} [NORMAL] Event:{host:${HOST}, syscall: execve, args:filename=/bin/echo argv=/bin/echo x\\n${forged}`), own[0]);
  assert.ok(own[0]!.endsWith(`caps: ${DOCKER_CAPS}}`), own[0]);
});
