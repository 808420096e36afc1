// io_uring: requests submitted through a ring never pass sys_enter/sys_exit. An open of a
// watched file, a connect, made only through a ring (a static fixture: raw
// io_uring_setup, mmap, io_uring_enter, no liburing) must still be reported, and the
// ring itself judged by the default policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'uring-ops.c');
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const hasUring = (() => {
  try {
    return execFileSync('sh', ['-c', 'cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0'], { encoding: 'utf8' }).trim() === '0';
  } catch {
    return false;
  }
})();
const skip = missingForContainerTests()
  ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture')
  ?? (hasUring ? undefined : 'io_uring is disabled on this host (kernel.io_uring_disabled)');

let built: string | undefined;
function fixture(): string {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-uring-'));
  chmodSync(dir, 0o755);
  built = join(dir, 'uring-ops');
  execFileSync('cc', ['-O2', '-static', '-o', built, source]);
  return built;
}

// Docker's default seccomp profile refuses io_uring_setup (Docker 25+): this is the
// cluster that allows it.
const run = (script: string) => ({
  image: TEST_IMAGES.busybox,
  script,
  dockerArgs: ['--security-opt', 'seccomp=unconfined', '-v', `${fixture()}:/uring:ro`],
  namePrefix: 'vigil-uring',
});

test('an open of a watched file submitted through io_uring is a file event, and the ring is judged', { skip }, async () => {
  const r = await observe([[]], run('/uring open /etc/shadow && cd /etc && /uring open hostname'));
  assert.equal(r.exitCode, 0, r.logs);
  const events = r.agents[0]?.events ?? [];
  const ring = events.filter((e) => e.process.exe === '/uring');
  const setup = ring.find((e) => e.kind === 'io_uring' && e.syscall === 'io_uring_setup');
  assert.ok(setup, `the ring's creation is reported: ${brief(ring)}`);
  assert.equal(setup.verdict.level, 'INSECURE');
  assert.ok(setup.verdict.rules.includes('io_uring from container'), JSON.stringify(setup.verdict));
  const shadow = ring.find((e) => e.syscall === 'io_uring:openat' && e.args['path'] === '/etc/shadow');
  assert.ok(shadow, `the io_uring open of /etc/shadow is reported: ${brief(ring)}`);
  assert.equal(shadow.kind, 'file');
  assert.equal(shadow.args['name'], '/etc/shadow');
  assert.match(String(shadow.args['flags']), /O_RDONLY/);
  assert.equal(shadow.verdict.level, 'INSECURE', 'the credential rules judge io_uring opens too');
  // A relative name is made absolute against the submitter's working directory.
  const relative = ring.find((e) => e.syscall === 'io_uring:openat' && e.args['name'] === 'hostname');
  assert.ok(relative, `the relative open is reported: ${brief(ring)}`);
  assert.equal(relative.args['path'], '/etc/hostname');
});

test('a connect submitted through io_uring is a network event with its address', { skip }, async () => {
  const r = await observe([[]], run('/uring connect 127.0.0.1 4739; true'));
  const events = r.agents[0]?.events ?? [];
  const connect = events.find((e) => e.syscall === 'io_uring:connect');
  assert.ok(connect, `the io_uring connect is reported: ${brief(events)}\n${r.logs}`);
  assert.equal(connect.kind, 'network');
  assert.equal(connect.args['addr'], '127.0.0.1:4739', JSON.stringify(connect.args));
  assert.equal(connect.args['port'], 4739);
  assert.equal(connect.args['addr_family'], 'AF_INET');
});

test('a request submitted by the ring\'s kernel thread (SQPOLL) is the container\'s own, not the runtime\'s', { skip }, async () => {
  const r = await observe([[]], run('/uring sqpoll /etc/shadow'));
  assert.equal(r.exitCode, 0, r.logs);
  // observe() leaves out events marked as the runtime's set-up: finding it here is the point.
  const events = r.agents[0]?.events ?? [];
  const open = events.find((e) => e.syscall === 'io_uring:openat' && e.args['path'] === '/etc/shadow');
  assert.ok(open, `the SQPOLL open is reported as the container's: ${brief(events)}\nall: ${brief((r.agents[0]?.all ?? []).filter((e) => e.syscall.startsWith('io_uring')))}`);
  assert.equal(open.args['sqpoll'], true);
  assert.equal(open.verdict.level, 'INSECURE');
});
