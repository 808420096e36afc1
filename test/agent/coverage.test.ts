// Full event coverage against real containers: file, process, capability and network
// events decoded as the kernel saw them, each rendered in the paper's text format.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { startAgent } from '../helpers/agent-process.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { renderText, type VigilEvent } from '../../src/events/index.js';
import type { SyscallCountsReport } from '../../src/agent/index.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

const TEXT_LINE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[NORMAL\] Event:\{host:[^,]+, syscall: [a-z_0-9]+, args:.*, time: \d{19}\}, Container:\{image: [^,]+, id: [0-9a-f]{12}, name: [^,]+\}, Process:\{proc: [^,]+, exe: [^,]+, pid: \d+, parent: [^,]*, args: .*, caps: [A-Z_,]*\}$/;

describe('event coverage in real containers', { skip }, () => {
  let events: VigilEvent[] = [];
  let fileId = '';
  let netId = '';
  let streamId = '';
  let counts: SyscallCountsReport | undefined;
  let testHost: TestHost | undefined;
  const streamed = uniqueName('vigil-stream');

  before(async () => {
    testHost = await createTestHost(40 + (process.pid % 50));
    docker('run', '-d', '--pull', 'never', '--name', streamed, TEST_IMAGES.busybox, 'sleep', '300');
    const countsPath = `/tmp/vigil-counts-${process.pid}.json`;
    const agent = await startAgent([NO_POLICY, '--counts', countsPath, '--stream', streamed]);
    const fileName = uniqueName('vigil-files');
    const netName = uniqueName('vigil-net');
    try {
      fileId = docker('run', '-d', '--pull', 'never', '--name', fileName, TEST_IMAGES.bash, 'sh', '-c', [
        'cat /etc/passwd >/dev/null',
        'cd /etc && cat ./hostname >/dev/null && cd /',
        'touch /tmp/x && chmod u+s /tmp/x',
        'ln -s /etc/passwd /tmp/link',
        'cat /tmp/link /tmp/../etc/hostname >/dev/null',
        // Failed opens: no fd for the kernel to name, so the filter judges the name itself.
        'cd /etc && cat vigil-missing-rel 2>/dev/null; cd /',
        'cat /tmp/../etc/vigil-missing-dotdot /tmp//etc-vigil-missing-slashes 2>/dev/null',
        'cat /tmp/vigil-missing-unwatched 2>/dev/null',
        `mkdir -p /tmp/${'d'.repeat(200)}/${'e'.repeat(100)} && cd /tmp/${'d'.repeat(200)}/${'e'.repeat(100)} && touch id_rsa.pem && cd /`,
        `cat /tmp/${'f'.repeat(300)}/vigil-missing-long 2>/dev/null`,
        'mkdir -p /tmp/d && touch /tmp/d/f && rm -r /tmp/d',
        'chown 1:1 /tmp/x',
        'unshare -n true',
        'cat /etc/$(printf %0300d 0) 2>/dev/null',
        'true',
      ].join('; '));
      docker('wait', fileName);
      const { address, listenPort, closedPort } = testHost;
      netId = docker('run', '-d', '--pull', 'never', '--name', netName, TEST_IMAGES.busybox, 'sh', '-c', [
        `echo | nc -w 3 ${address} ${listenPort}`,
        `echo | nc -w 3 ${address} ${closedPort}`,
        'nc -l -p 9000 & sleep 0.5; kill $!',
        'true',
      ].join('; '));
      docker('wait', netName);
      streamId = docker('inspect', '-f', '{{.Id}}', streamed);
      docker('exec', streamed, 'cat', '/etc/hostname');
    } finally {
      docker('rm', '-f', fileName, netName, streamed);
    }
    await new Promise((r) => setTimeout(r, 500));
    const stopped = await agent.stop();
    assert.equal(stopped.code, 0, agent.stderr());
    events = stopped.events;
    counts = JSON.parse(readFileSync(countsPath, 'utf8')) as SyscallCountsReport;
  });

  after(() => testHost?.close());

  const of = (id: string, pred: (e: VigilEvent) => boolean) => events.filter((e) => e.container.id === id && pred(e));
  const assertText = (e: VigilEvent) => assert.match(renderText(e), TEXT_LINE, renderText(e));

  test('file: cat /etc/passwd is an openat with the path, flags and returned fd', () => {
    const open = of(fileId, (e) => e.kind === 'file' && e.syscall === 'openat' && e.process.comm === 'cat' && e.args['name'] === '/etc/passwd');
    assert.equal(open.length, 1, JSON.stringify(of(fileId, (e) => e.kind === 'file').map((e) => [e.syscall, e.args])));
    const e = open[0]!;
    assert.equal(e.args['dirfd'], '-100(AT_FDCWD)');
    assert.equal(e.args['name'], '/etc/passwd');
    assert.equal(e.args['flags'], '0(O_RDONLY)');
    assert.ok(typeof e.ret === 'number' && e.ret >= 3, `ret ${e.ret} is an fd`);
    assert.match(renderText(e), /syscall: openat, args:dirfd=-100\(AT_FDCWD\) name=\/etc\/passwd flags=0\(O_RDONLY\) mode=0, ret: \d+, time: \d+\}, Container:\{image: vigil-test\/bash:2, id: [0-9a-f]{12}, name: vigil-files-[^}]+\}, Process:\{proc: cat, exe: \/bin\/cat, pid: \d+, parent: sh, args: cat \/etc\/passwd, caps: CHOWN,DAC_OVERRIDE,/);
    assertText(e);
  });

  test('file: a relative name is resolved against the working directory', () => {
    const e = of(fileId, (x) => x.syscall === 'openat' && x.args['name'] === './hostname')[0];
    assert.ok(e, 'no openat of ./hostname');
    assert.equal(e.args['path'], '/etc/hostname');
    assert.match(renderText(e), /name=\.\/hostname\(\/etc\/hostname\)/);
  });

  test('file: symlinks and .. resolve to the file the kernel opened', () => {
    const viaLink = of(fileId, (x) => x.syscall === 'openat' && x.args['name'] === '/tmp/link')[0];
    assert.ok(viaLink, 'no openat of /tmp/link (its target is watched)');
    assert.equal(viaLink.args['path'], '/etc/passwd');
    assert.match(renderText(viaLink), /name=\/tmp\/link\(\/etc\/passwd\)/);
    const dotdot = of(fileId, (x) => x.syscall === 'openat' && x.args['name'] === '/tmp/../etc/hostname')[0];
    assert.ok(dotdot, 'no openat of /tmp/../etc/hostname');
    assert.equal(dotdot.args['path'], '/etc/hostname');
  });

  test('file: a failed open is judged by its name joined to its directory; odd names pass, unwatched ones do not', () => {
    const names = of(fileId, (x) => x.syscall === 'openat' && x.ret !== null && x.ret < 0).map((x) => String(x.args['name']));
    // Relative to /etc: watched once joined to the working directory.
    assert.ok(names.includes('vigil-missing-rel'), `a failed relative open in /etc is reported: ${JSON.stringify(names)}`);
    const rel = of(fileId, (x) => x.args['name'] === 'vigil-missing-rel')[0]!;
    assert.equal(rel.args['path'], '/etc/vigil-missing-rel');
    // '..' and '//' are how one would write a watched path that no prefix matches.
    assert.ok(names.includes('/tmp/../etc/vigil-missing-dotdot'), 'a name with .. is reported');
    assert.ok(names.includes('/tmp//etc-vigil-missing-slashes'), 'a name with // is reported');
    assert.ok(!names.includes('/tmp/vigil-missing-unwatched'), 'a canonical unwatched name is still filtered');
    // A name cut at its bound cannot be judged: it passes.
    assert.ok(names.some((n) => n.startsWith('/tmp/fff') && !n.includes('vigil-missing-long')), 'a name too long to judge is reported');
    // Suffixes match the end of kernel paths longer than a prefix key (256 bytes).
    const long = of(fileId, (x) => x.syscall === 'openat' && String(x.args['path'] ?? '').endsWith('/id_rsa.pem'))[0];
    assert.ok(long, 'a watched suffix matches the end of a 317-byte path');
    assert.ok(String(long.args['path']).length > 300);
  });

  test('file: a name relative to a directory fd is resolved against that directory', () => {
    const e = of(fileId, (x) => x.syscall === 'unlinkat' && x.args['name'] === 'f')[0];
    assert.ok(e, `no unlinkat of f: ${JSON.stringify(of(fileId, (x) => x.syscall.startsWith('unlink')).map((x) => x.args))}`);
    assert.equal(typeof e.args['dirfd'], 'number', 'rm -r works through a directory fd');
    assert.equal(e.args['path'], '/tmp/d/f');
    assert.equal(e.ret, 0);
    assertText(e);
  });

  test('file: chmod u+s sets S_ISUID on the resolved path', () => {
    const e = of(fileId, (x) => ['chmod', 'fchmodat', 'fchmodat2'].includes(x.syscall) && x.process.comm === 'chmod')[0];
    assert.ok(e, 'no chmod event');
    assert.equal(e.args['path'], '/tmp/x');
    assert.match(String(e.args['mode']), /^04\d{3}\(S_ISUID\)$/);
    assert.equal(e.ret, 0);
    assertText(e);
  });

  test('file: ln -s records the target and the link path', () => {
    const e = of(fileId, (x) => ['symlink', 'symlinkat'].includes(x.syscall) && x.process.comm === 'ln')[0];
    assert.ok(e, 'no symlink event');
    assert.equal(e.args['target'], '/etc/passwd');
    assert.equal(e.args['linkpath'], '/tmp/link');
    assert.equal(e.args['path'], '/tmp/link');
    assert.equal(e.ret, 0);
    assertText(e);
  });

  test('capability: chown as root in the container checks CAP_CHOWN and is granted', () => {
    const e = of(fileId, (x) => x.kind === 'capability' && x.process.comm === 'chown' && x.args['capability'] === 'CHOWN')[0];
    assert.ok(e, `no CAP_CHOWN check: ${JSON.stringify(of(fileId, (x) => x.kind === 'capability').map((x) => [x.process.comm, x.args['capability']]))}`);
    assert.equal(e.args['granted'], true);
    assert.equal(e.args['cap'], '0(CAP_CHOWN)');
    assert.ok(e.process.caps.includes('CHOWN'));
    const chown = of(fileId, (x) => ['chown', 'fchownat', 'lchown'].includes(x.syscall) && x.process.comm === 'chown')[0];
    assert.ok(chown && chown.args['uid'] === 1 && chown.args['gid'] === 1 && chown.args['path'] === '/tmp/x');
    assertText(e);
  });

  test('a string longer than its bound is cut and marked', () => {
    const e = of(fileId, (x) => x.syscall === 'openat' && String(x.args['name']).startsWith('/etc/000'))[0];
    assert.ok(e, 'no openat of the over-long name');
    assert.equal(String(e.args['name']).length, 255, 'a user string keeps 255 bytes');
    assert.equal(e.args['string_truncated'], true);
    assert.equal(e.error, 'ENAMETOOLONG');
  });

  test('process: unshare is reported with its namespace flags and the refusal', () => {
    const e = of(fileId, (x) => x.syscall === 'unshare')[0];
    assert.ok(e, 'no unshare event');
    assert.match(String(e.args['flags']), /CLONE_NEWNET/);
    assert.equal(e.ret, -1);
    assert.equal(e.error, 'EPERM');
    assertText(e);
  });

  test('network: a TCP connect to a listener in our namespace: address, port, return value, states', () => {
    const host = testHost!;
    const e = of(netId, (x) => x.syscall === 'connect' && x.args['addr'] === `${host.address}:${host.listenPort}`)[0];
    assert.ok(e, `no connect: ${JSON.stringify(of(netId, (x) => x.kind === 'network').map((x) => [x.syscall, x.args, x.ret]))}`);
    assert.equal(e.args['addr_family'], 'AF_INET');
    assert.equal(e.args['port'], host.listenPort);
    assert.equal(e.args['sock_type'], 'SOCK_STREAM');
    assert.ok(e.ret === 0 || e.error === 'EINPROGRESS', `connect returned ${e.ret}`);
    const states = of(netId, (x) => x.kind === 'tcp' && x.args['remote'] === `${host.address}:${host.listenPort}`).map((x) => `${x.args['oldstate']}>${x.args['newstate']}`);
    assert.ok(states.includes('SYN_SENT>ESTABLISHED'), `TCP states: ${states.join(', ')}`);
    assertText(e);
  });

  test('network: a refused connect is told from an established one', () => {
    const host = testHost!;
    const refused = of(netId, (x) => x.syscall === 'connect' && x.args['addr'] === `${host.address}:${host.closedPort}`)[0];
    assert.ok(refused, 'no connect to the closed port');
    const states = of(netId, (x) => x.kind === 'tcp' && x.args['remote'] === `${host.address}:${host.closedPort}`).map((x) => `${x.args['oldstate']}>${x.args['newstate']}`);
    assert.ok(refused.error === 'ECONNREFUSED' || (refused.error === 'EINPROGRESS' && states.includes('SYN_SENT>CLOSE')), `refused connect: ret ${refused.ret} ${refused.error}, states ${states.join(', ')}`);
    assert.ok(!states.includes('SYN_SENT>ESTABLISHED'));
    assertText(refused);
  });

  test('network: bind and listen with the local address', () => {
    const bind = of(netId, (x) => x.syscall === 'bind' && x.args['port'] === 9000)[0];
    assert.ok(bind, 'no bind to port 9000');
    assert.equal(bind.ret, 0);
    // busybox nc listens dual-stack: an AF_INET6 socket on [::]:9000
    assert.ok(['AF_INET', 'AF_INET6'].includes(String(bind.args['addr_family'])));
    const local = bind.args['addr_family'] === 'AF_INET6' ? '[::]:9000' : '0.0.0.0:9000';
    assert.equal(bind.args['addr'], local);
    const listen = of(netId, (x) => x.syscall === 'listen' && x.args['sock_local'] === local)[0];
    assert.ok(listen, `no listen on ${local}: ${JSON.stringify(of(netId, (x) => x.syscall === 'listen').map((x) => x.args))}`);
    assert.equal(listen.ret, 0);
    const states = of(netId, (x) => x.kind === 'tcp' && x.args['local'] === local).map((x) => `${x.args['oldstate']}>${x.args['newstate']}`);
    assert.ok(states.includes('CLOSE>LISTEN'), `listener states: ${states.join(', ')}`);
    assertText(bind);
    assertText(listen);
  });

  test('every syscall is counted per container, readable on demand', () => {
    const c = counts!.containers.find((x) => x.id === fileId);
    assert.ok(c, 'no counts for the container');
    assert.equal(c.image, TEST_IMAGES.bash);
    assert.ok((c.syscalls['openat'] ?? 0) >= 2 && (c.syscalls['execve'] ?? 0) >= 5 && (c.syscalls['mmap'] ?? 0) > 0, JSON.stringify(c.syscalls));
    assert.equal(c.total, Object.values(c.syscalls).reduce((a, b) => a + b, 0));
  });

  test('raw streaming of one container sends its every syscall', () => {
    const raw = of(streamId, (x) => x.kind === 'syscall');
    const names = new Set(raw.map((x) => x.syscall));
    for (const n of ['execve', 'openat', 'read', 'write', 'close']) assert.ok(names.has(n), `streamed syscalls lack ${n}: ${[...names].join(', ')}`);
    assert.ok(raw.every((x) => 'arg0' in x.args && typeof x.args['nr'] === 'number'));
    assert.equal(raw.find((x) => x.syscall === 'openat')?.args['nr'], 257, 'openat is 257 on x86_64');
    assert.equal(of(fileId, (x) => x.kind === 'syscall').length, 0, 'other containers are not streamed');
  });
});
