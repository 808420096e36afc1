// The file, process and network system calls an attacker uses, made one of each by a small static
// program (test/agent/fixtures/syscall-zoo.c) in a real container: each is reported,
// decoded, with its return value; the ones Docker's seccomp profile refuses are still
// seen, marked as refused.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderText, type VigilEvent } from '../../src/events/index.js';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { startAgent } from '../helpers/agent-process.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'syscall-zoo.c');
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (hasCc ? undefined : 'no C compiler (cc) to build the syscall fixture');

describe('file, process and network calls in a real container', { skip }, () => {
  let events: VigilEvent[] = [];
  let all: VigilEvent[] = [];
  let id = '';

  before(async () => {
    const zoo = join(mkdtempSync(join(tmpdir(), 'vigil-zoo-')), 'syscall-zoo');
    execFileSync('cc', ['-O2', '-static', '-o', zoo, source]);
    const config = join(dirname(zoo), 'agent.yaml');
    writeFileSync(config, 'capture:\n  syscalls: [default, sendto]\n');
    const agent = await startAgent([NO_POLICY, '--config', config]);
    const name = uniqueName('vigil-zoo');
    try {
      // IPv6 is off in containers by default; the fixture needs it on its loopback.
      id = docker('run', '-d', '--pull', 'never', '--sysctl', 'net.ipv6.conf.lo.disable_ipv6=0', '-v', `${zoo}:/zoo:ro`, '--name', name, TEST_IMAGES.busybox, '/zoo');
      assert.equal(docker('wait', name), '3', docker('logs', name));
    } finally {
      docker('rm', '-f', name);
    }
    const stopped = await agent.stop();
    assert.equal(stopped.code, 0, agent.stderr());
    // The fixture's own events: the runtime's set-up (runc mounting, chmod-ing) is left out.
    all = stopped.events.filter((e) => e.container.id === id);
    events = all.filter((e) => e.process.exe === '/zoo');
  });

  const one = (syscall: string, pred: (e: VigilEvent) => boolean = () => true): VigilEvent => {
    const e = events.find((x) => x.syscall === syscall && pred(x));
    assert.ok(e, `no ${syscall} event; the container's were: ${JSON.stringify(events.map((x) => [x.syscall, x.args, x.ret]))}`);
    return e;
  };

  test('creat, openat2, truncate, rename, link, unlink, fchmodat with setuid bits', () => {
    const creat = one('creat');
    assert.equal(creat.args['path'], '/etc/zoo-creat');
    assert.ok(creat.ret !== null && creat.ret >= 0);
    const openat2 = one('openat2');
    assert.equal(openat2.args['path'], '/etc/zoo-creat');
    assert.match(String(openat2.args['flags']), /O_CLOEXEC/);
    assert.equal(one('truncate').args['length'], 10);
    const rename = one('rename');
    assert.deepEqual([rename.args['oldname'], rename.args['newname'], rename.ret], ['/etc/zoo-creat', '/etc/zoo-renamed', 0]);
    assert.equal(one('link').args['newname'], '/etc/zoo-link');
    assert.equal(one('unlink').args['name'], '/etc/zoo-link');
    const chmod = one('fchmodat');
    assert.match(String(chmod.args['mode']), /04755\(S_ISUID\)/);
    assert.equal(chmod.ret, 0);
  });

  test("rename's and link's second name: made absolute against its own directory (the first one's, another fd's, the cwd)", () => {
    assert.equal(one('rename').args['new_path'], '/etc/zoo-renamed');
    assert.equal(one('link').args['new_path'], '/etc/zoo-link');
    const sameDir = one('renameat', (e) => e.args['newname'] === 'zoo-renamed2');
    assert.deepEqual([sameDir.args['path'], sameDir.args['new_path'], sameDir.ret], ['/etc/zoo-renamed', '/etc/zoo-renamed2', 0]);
    // Into another directory fd: the kernel side reads that directory too.
    const otherDir = one('renameat', (e) => e.args['newname'] === 'zoo-moved');
    assert.deepEqual([otherDir.args['path'], otherDir.args['new_path'], otherDir.ret], ['/etc/zoo-renamed2', '/tmp/zoo-moved', 0]);
    // An absolute first name, a relative second one: against the working directory (/etc).
    const linkat = one('linkat', (e) => e.args['newname'] === 'zoo-link2');
    assert.deepEqual([linkat.args['path'], linkat.args['new_path'], linkat.ret], ['/tmp/zoo-moved', '/etc/zoo-link2', 0]);
  });

  test('mount without CAP_SYS_ADMIN fails with EPERM and is reported', () => {
    const mount = one('mount');
    assert.deepEqual([mount.args['source'], mount.args['target'], mount.args['fstype']], ['none', '/mnt', 'tmpfs']);
    assert.equal(mount.error, 'EPERM');
  });

  test('setuid, setgid, setresuid and capset are reported with their arguments', () => {
    assert.equal(one('setuid').args['uid'], 0);
    assert.equal(one('setgid').args['gid'], 0);
    assert.equal(one('setresuid').args['ruid'], -1);
    const capset = one('capset');
    assert.equal(capset.ret, 0);
    // The call's effective set lacks NET_RAW; the process's caps after it lack it too.
    assert.doesNotMatch(JSON.stringify(capset.args), /NET_RAW/);
    const later = one('memfd_create');
    assert.ok(!later.process.caps.includes('NET_RAW'), later.process.caps.join(','));
  });

  test('an exec from a memfd: the name passed is an fd, the executable is the memfd', () => {
    const exec = all.find((e) => e.kind === 'exec' && e.process.args[0] === 'zoo-memfd-child');
    assert.ok(exec, `no exec of the memfd copy: ${JSON.stringify(all.filter((e) => e.kind === 'exec').map((e) => [e.args['filename'], e.process.exe]))}`);
    assert.match(String(exec.args['filename']), /^\/dev\/fd\/\d+$/);
    assert.equal(exec.process.exe, '/memfd:zoo-exec');
    assert.ok(exec.process.exe !== exec.args['filename']);
  });

  test('prctl, memfd_create and ptrace are reported, decoded', () => {
    assert.match(String(one('prctl').args['option']), /PR_SET_NAME/);
    const memfd = one('memfd_create');
    assert.equal(memfd.args['name'], 'zoo-memfd');
    assert.match(String(memfd.args['flags']), /MFD_CLOEXEC/);
    const attach = one('ptrace', (e) => /PTRACE_ATTACH/.test(String(e.args['request'])));
    assert.equal(attach.ret, 0);
    assert.ok(one('ptrace', (e) => /PTRACE_DETACH/.test(String(e.args['request']))));
  });

  test('bpf and finit_module refused by the seccomp profile are still reported', () => {
    for (const name of ['bpf', 'finit_module']) {
      const e = one(name);
      assert.equal(e.error, 'EPERM', JSON.stringify(e));
      assert.equal(e.args['refused_before_entry'], true, JSON.stringify(e));
    }
    assert.match(String(one('bpf').args['cmd']), /BPF_PROG_LOAD/);
  });

  test('a failed execve and the exit code', () => {
    const exec = one('execve', (e) => e.kind === 'process');
    assert.equal(exec.error, 'ENOENT');
    assert.equal(exec.args['filename'], '/zoo-missing');
    const exits = events.filter((e) => e.kind === 'exit' && e.process.comm === 'zoo-renamed');
    assert.deepEqual(exits.map((e) => [e.args['code'], e.args['signal']]).sort(), [[0, 9], [3, 0]], 'the traced child killed by SIGKILL, the fixture with code 3');
  });

  test('IPv6 bind, listen, connect and accept carry both ends; sendto (opted in) its address; a unix socket its path', () => {
    const bind = one('bind', (e) => e.args['addr_family'] === 'AF_INET6');
    assert.deepEqual([bind.args['addr'], bind.args['port'], bind.ret], ['[::1]:7007', 7007, 0]);
    assert.equal(one('listen').args['sock_local'], '[::1]:7007');
    const connect = one('connect');
    assert.deepEqual([connect.args['addr'], connect.args['sock_type'], connect.ret], ['[::1]:7007', 'SOCK_STREAM', 0]);
    const accept = one('accept');
    assert.ok(accept.ret !== null && accept.ret > 0, `accept returned ${accept.ret}`);
    assert.equal(accept.args['sock_local'], '[::1]:7007');
    assert.equal(accept.args['sock_remote'], connect.args['sock_local'], 'the accepted peer is the connecting socket');
    const sendto = one('sendto');
    assert.deepEqual([sendto.args['addr'], sendto.args['sock_type'], sendto.args['len'], sendto.ret], ['[::1]:7008', 'SOCK_DGRAM', 3, 3]);
    const unix = one('bind', (e) => e.args['addr_family'] === 'AF_UNIX');
    assert.equal(unix.args['addr'], '/tmp/zoo.sock');
    const states = events.filter((e) => e.kind === 'tcp' && e.args['family'] === 'AF_INET6').map((e) => `${e.args['oldstate']}>${e.args['newstate']}`);
    for (const s of ['CLOSE>LISTEN', 'CLOSE>SYN_SENT', 'SYN_SENT>ESTABLISHED']) assert.ok(states.includes(s), `${s} missing from ${states.join(', ')}`);
  });

  test("none of the fixture's events is taken for the runtime's set-up", () => {
    assert.ok(events.length > 30);
    assert.deepEqual(events.filter((e) => e.process.containerSetup).map((e) => e.syscall), []);
  });

  test('each renders as the paper text line', () => {
    for (const e of events.filter((x) => x.kind === 'file' || x.kind === 'process' || x.kind === 'network')) {
      assert.match(renderText(e), /^\S+ \S+ \[NORMAL\] Event:\{host:[^,]+, syscall: \w+, args:.*\}, Container:\{image: vigil-test\/busybox:1, id: [0-9a-f]{12}, name: vigil-zoo-[^}]+\}, Process:\{proc: [^,]+, exe: [^,]+, pid: \d+, parent: [^,]*, args: [^,]*, caps: /, renderText(e));
    }
  });
});
