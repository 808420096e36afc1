// The capture filters decided in the kernel, against real containers: watched ports,
// excluded path prefixes, watched suffixes, all paths, and syscall counting turned off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import type { SyscallCountsReport } from '../../src/agent/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { agentConfig, brief, observe, tempDir } from '../helpers/observe.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

const WATCHED = 7301;
const UNWATCHED = 7302;

/** Does a network or tcp event name this port at either end or in its sockaddr? */
function mentionsPort(e: VigilEvent, port: number): boolean {
  if (e.args['port'] === port) return true;
  return ['addr', 'sock_local', 'sock_remote', 'local', 'remote'].some((k) => typeof e.args[k] === 'string' && String(e.args[k]).endsWith(`:${port}`));
}

// Listeners on both ports inside the container, one client connection to each.
const PORT_SCRIPT = [
  `nc -l -p ${WATCHED} >/dev/null & nc -l -p ${UNWATCHED} >/dev/null & sleep 0.3`,
  `echo a | nc -w 2 127.0.0.1 ${WATCHED}`,
  `echo b | nc -w 2 127.0.0.1 ${UNWATCHED}`,
  'sleep 0.2; kill %1 %2 2>/dev/null; true',
].join('; ');

test('capture.ports: connect, bind and listen on a watched port are reported; on an unwatched port they are not', { skip }, async () => {
  const config = agentConfig(`capture:\n  ports: [${WATCHED}]\n`);
  const run = await observe([[NO_POLICY, '--config', config]], { image: TEST_IMAGES.busybox, script: PORT_SCRIPT, namePrefix: 'vigil-ports' });
  assert.equal(run.exitCode, 0, run.logs);
  const net = run.agents[0]!.events.filter((e) => e.kind === 'network');

  const connect = net.find((e) => e.syscall === 'connect' && e.args['addr'] === `127.0.0.1:${WATCHED}`);
  assert.ok(connect, `no connect to the watched port: ${brief(net)}`);
  assert.equal(connect.args['port'], WATCHED);
  assert.equal(connect.args['addr_family'], 'AF_INET');
  assert.equal(connect.process.comm, 'nc');
  assert.ok(connect.ret === 0 || connect.error === 'EINPROGRESS', `connect returned ${connect.ret} ${connect.error}`);
  assert.ok(net.some((e) => e.syscall === 'bind' && e.args['port'] === WATCHED), `no bind of the watched port: ${brief(net)}`);
  assert.ok(net.some((e) => e.syscall === 'listen' && String(e.args['sock_local']).endsWith(`:${WATCHED}`)), `no listen on the watched port: ${brief(net)}`);

  const leaked = net.filter((e) => mentionsPort(e, UNWATCHED));
  assert.deepEqual(leaked.map((e) => [e.syscall, e.args]), [], 'network events of the unwatched port crossed the filter');
  // The unwatched connection did happen: its client ran and exited cleanly.
  const clients = run.agents[0]!.events.filter((e) => e.kind === 'exec' && e.process.args.join(' ') === `nc -w 2 127.0.0.1 ${UNWATCHED}`);
  assert.equal(clients.length, 1, 'the client of the unwatched port ran');
});

// sys_enter starts following a connect's or listen's socket before the call runs (its
// first state changes come before it returns): the port filter applies there too.
test('capture.ports: TCP state changes of a connection on an unwatched port are not reported', { skip }, async () => {
  const config = agentConfig(`capture:\n  ports: [${WATCHED}]\n`);
  const run = await observe([[NO_POLICY, '--config', config]], { image: TEST_IMAGES.busybox, script: PORT_SCRIPT, namePrefix: 'vigil-ports-tcp' });
  assert.equal(run.exitCode, 0, run.logs);
  const tcp = run.agents[0]!.events.filter((e) => e.kind === 'tcp');
  const watched = tcp.filter((e) => mentionsPort(e, WATCHED)).map((e) => `${e.args['oldstate']}>${e.args['newstate']}`);
  assert.ok(watched.includes('SYN_SENT>ESTABLISHED'), `the watched connection's states: ${watched.join(', ')}`);
  const leaked = tcp.filter((e) => mentionsPort(e, UNWATCHED)).map((e) => `${e.process.comm} ${e.args['oldstate']}>${e.args['newstate']} ${e.args['local']} ${e.args['remote'] ?? ''}`);
  assert.deepEqual(leaked, [], 'TCP state changes of the unwatched port crossed the filter');
});

test('capture.paths: an excluded prefix under a watched one is dropped; a watched suffix outside the watched prefixes is reported', { skip }, async () => {
  const config = agentConfig('capture:\n  paths:\n    exclude: [/etc/vigil-excluded/]\n    suffixes: [.vigil-secret]\n');
  const script = [
    'mkdir /etc/vigil-excluded',
    'echo x > /etc/vigil-excluded/f',
    'cat /etc/vigil-excluded/f >/dev/null',
    'cat /etc/hostname >/dev/null',
    'echo x > /tmp/k.vigil-secret',
    'cat /tmp/k.vigil-secret >/dev/null',
    'cat /tmp/missing.vigil-secret 2>/dev/null',
    'echo x > /tmp/plain',
    'cat /tmp/plain >/dev/null',
    'true',
  ].join('; ');
  const run = await observe([[NO_POLICY, '--config', config]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-paths' });
  assert.equal(run.exitCode, 0, run.logs);
  const files = run.agents[0]!.events.filter((e) => e.kind === 'file');

  // Still watched: /etc/ itself.
  const hostname = files.find((e) => e.syscall === 'openat' && e.args['path'] === '/etc/hostname' && e.process.comm === 'cat');
  assert.ok(hostname, `no open of /etc/hostname: ${brief(files)}`);
  // Excluded: nothing under /etc/vigil-excluded/, neither the write nor the read.
  assert.deepEqual(files.filter((e) => String(e.args['path'] ?? e.args['name']).startsWith('/etc/vigil-excluded/')).map((e) => [e.syscall, e.args]), []);
  // The suffix: written by the shell, read by cat, and a failed open of a missing file.
  const secret = files.filter((e) => e.syscall === 'openat' && e.args['path'] === '/tmp/k.vigil-secret');
  const writer = secret.find((e) => e.process.comm === 'bash' || e.process.comm === 'sh');
  assert.ok(writer, `no open for writing of /tmp/k.vigil-secret: ${brief(files)}`);
  assert.match(String(writer.args['flags']), /O_WRONLY\|O_CREAT\|O_TRUNC/);
  const reader = secret.find((e) => e.process.comm === 'cat');
  assert.ok(reader, `no open by cat of /tmp/k.vigil-secret: ${brief(files)}`);
  assert.equal(reader.args['flags'], '0(O_RDONLY)');
  assert.ok(typeof reader.ret === 'number' && reader.ret >= 3);
  const missing = files.find((e) => e.syscall === 'openat' && e.args['name'] === '/tmp/missing.vigil-secret');
  assert.ok(missing, `no failed open of /tmp/missing.vigil-secret: ${brief(files)}`);
  assert.equal(missing.error, 'ENOENT');
  // Neither watched nor a suffix: dropped.
  assert.deepEqual(files.filter((e) => e.args['path'] === '/tmp/plain').map((e) => [e.syscall, e.args]), []);
});

test("the default excludes: an exact path drops only itself, a directory entry its tree; a path deeper than the walk is reported cut", { skip }, async () => {
  const deep = `/etc/${Array.from({ length: 45 }, (_, i) => `d${i}`).join('/')}`;
  const script = [
    'cat /etc/localtime /etc/ld.so.cache >/dev/null 2>&1',
    'echo x > /etc/localtime2 && echo x > /etc/ld.so.cache.x',
    'cat /etc/localtime2 /etc/ld.so.cache.x >/dev/null',
    `mkdir -p ${deep} && echo x > ${deep}/f && cat ${deep}/f >/dev/null`,
    'true',
  ].join('; ');
  const run = await observe([[NO_POLICY]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-exact' });
  assert.equal(run.exitCode, 0, run.logs);
  const opens = run.agents[0]!.events.filter((e) => e.syscall === 'openat' && e.process.comm === 'cat');
  const paths = opens.map((e) => String(e.args['path']));
  assert.ok(!paths.includes('/etc/localtime') && !paths.includes('/etc/ld.so.cache'), `excluded exactly: ${paths.join(' ')}`);
  assert.ok(paths.includes('/etc/localtime2'), `a name that merely starts with an excluded path is reported: ${paths.join(' ')}`);
  assert.ok(paths.includes('/etc/ld.so.cache.x'), `/etc/ld.so.cache.x is reported: ${paths.join(' ')}`);
  // 47 levels: more than the kernel side walks, so the path loses its leading levels and is marked.
  const cut = opens.find((e) => String(e.args['name']) === `${deep}/f`);
  assert.ok(cut, `the open of the deep file is reported: ${brief(opens)}`);
  assert.equal(cut.args['path_truncated'], true);
  assert.ok(String(cut.args['path']).endsWith('/d44/f'));
});

test('--all-paths and capture.paths.all: an open of an ordinary unwatched path is reported', { skip }, async () => {
  const config = agentConfig('capture:\n  paths:\n    all: true\n');
  const script = 'echo x > /tmp/plain; cat /tmp/plain >/dev/null; cat /var/tmp/missing-plain 2>/dev/null; true';
  // Three agents watch the same container: the default, the flag, the config key.
  const run = await observe([[NO_POLICY], [NO_POLICY, '--all-paths'], [NO_POLICY, '--config', config]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-allpaths' });
  assert.equal(run.exitCode, 0, run.logs);
  const [byDefault, byFlag, byConfig] = run.agents.map((a) => a.events.filter((e) => e.kind === 'file'));
  assert.deepEqual(byDefault!.filter((e) => e.args['path'] === '/tmp/plain').map((e) => e.args), [], 'the default agent drops /tmp/plain');
  for (const [how, files] of [['--all-paths', byFlag!], ['paths.all: true', byConfig!]] as const) {
    const read = files.find((e) => e.syscall === 'openat' && e.args['path'] === '/tmp/plain' && e.process.comm === 'cat');
    assert.ok(read, `${how}: no open of /tmp/plain by cat: ${brief(files)}`);
    assert.equal(read.args['flags'], '0(O_RDONLY)');
    assert.ok(typeof read.ret === 'number' && read.ret >= 3);
    const write = files.find((e) => e.syscall === 'openat' && e.args['path'] === '/tmp/plain' && e.process.comm !== 'cat');
    assert.ok(write, `${how}: no open for writing of /tmp/plain`);
    const missing = files.find((e) => e.syscall === 'openat' && e.args['name'] === '/var/tmp/missing-plain');
    assert.ok(missing, `${how}: no failed open of /var/tmp/missing-plain`);
    assert.equal(missing.error, 'ENOENT');
  }
});

test('capture.countSyscalls: false writes no syscall counts, while events still flow', { skip }, async () => {
  const dir = tempDir('vigil-counts');
  const countedPath = join(dir, 'counted.json');
  const uncountedPath = join(dir, 'uncounted.json');
  const config = agentConfig('capture:\n  countSyscalls: false\n');
  const run = await observe([[NO_POLICY, '--counts', countedPath], [NO_POLICY, '--config', config, '--counts', uncountedPath]], {
    image: TEST_IMAGES.bash, script: 'cat /etc/hostname >/dev/null; ls / >/dev/null; true', namePrefix: 'vigil-nocount',
  });
  assert.equal(run.exitCode, 0, run.logs);
  const counted = JSON.parse(readFileSync(countedPath, 'utf8')) as SyscallCountsReport;
  const uncounted = JSON.parse(readFileSync(uncountedPath, 'utf8')) as SyscallCountsReport;
  // The agent that counts saw the container's calls...
  const mine = counted.containers.find((c) => c.id === run.id);
  assert.ok(mine && mine.total > 0 && (mine.syscalls['execve'] ?? 0) >= 3, `counting agent: ${JSON.stringify(counted.containers.map((c) => [c.name, c.total]))}`);
  // ...the one told not to count has nothing, for this container or any other.
  assert.equal(uncounted.containers.find((c) => c.id === run.id), undefined, JSON.stringify(uncounted.containers.find((c) => c.id === run.id)));
  assert.deepEqual(uncounted.containers.filter((c) => c.total > 0).map((c) => [c.name, c.total]), []);
  // Events are not affected.
  const events = run.agents[1]!.events;
  assert.ok(events.some((e) => e.kind === 'exec' && e.process.comm === 'cat'), 'exec of cat reported without counting');
  assert.ok(events.some((e) => e.kind === 'file' && e.args['path'] === '/etc/hostname'), 'open of /etc/hostname reported without counting');
});
