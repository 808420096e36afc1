// A container that reaches the host's files through open_by_handle_at (the "shocker"
// escape) opens them relative to a directory outside every mount it has. The kernel
// side cannot name such a path whole: it marks it cut, and a cut path passes the path
// filter, so the open is reported rather than steered past the watched prefixes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { startAgent } from '../helpers/agent-process.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'handle-escape.c');
const EXT4_SUPER_MAGIC = 0xef53;
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const dockerOnExt4 = (() => {
  try {
    return statfsSync('/var/lib/docker').type === EXT4_SUPER_MAGIC;
  } catch {
    return false;
  }
})();
const skip = missingForContainerTests()
  ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture')
  ?? (dockerOnExt4 ? undefined : 'the fixture asks for inode 2, the root of an ext4 file system, and /var/lib/docker is not on ext4');

test('an open through a handle to the host root (open_by_handle_at) is reported, its path marked cut', { skip }, async () => {
  const fixture = join(mkdtempSync(join(tmpdir(), 'vigil-shocker-')), 'handle-escape');
  execFileSync('cc', ['-O2', '-static', '-o', fixture, source]);
  const agent = await startAgent([NO_POLICY]);
  const name = uniqueName('vigil-shocker');
  let id = '';
  try {
    id = docker('run', '-d', '--pull', 'never', '--cap-add', 'DAC_READ_SEARCH', '--security-opt', 'seccomp=unconfined',
      '-v', `${fixture}:/escape:ro`, '--name', name, TEST_IMAGES.busybox, '/escape');
    assert.equal(docker('wait', name), '0', docker('logs', name));
  } finally {
    docker('rm', '-f', name);
  }
  const { code, events } = await agent.stop();
  assert.equal(code, 0, agent.stderr());
  const mine = events.filter((e) => e.container.id === id && e.process.exe === '/escape');
  const open = mine.find((e) => e.syscall === 'openat' && e.args['name'] === 'etc/hostname');
  assert.ok(open, `the open of the host's etc/hostname is reported: ${JSON.stringify(mine.map((e) => [e.syscall, e.args]))}`);
  assert.ok(typeof open.ret === 'number' && open.ret >= 0, 'it succeeded');
  assert.equal(open.args['path'], '/etc/hostname');
  assert.equal(open.args['path_truncated'], true, 'the path does not lead back to the container\'s root');
});
