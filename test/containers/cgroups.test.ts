// Container ids from the cgroup paths each runtime and cgroup driver writes, and the
// reference hierarchy from mountinfo: the parts of identity that must hold on cgroup v2,
// systemd and containerd hosts as well as this machine's cgroup v1 Docker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerIdFromCgroupPath, detectCgroupHierarchy, findCgroupPathByKey, keyOfCgroupPath } from '../../src/containers/index.js';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';

const ID = 'a3da9f2deb4b9f0c1c7e0e0d3c8f6a1b2c3d4e5f60718293a4b5c6d7e8f90123';

test('container ids from the cgroup paths of each runtime and driver', () => {
  const cases: Array<[string, string | undefined, string?]> = [
    [`/docker/${ID}`, ID, 'docker'],                                             // cgroupfs driver, v1 or v2
    [`/system.slice/docker-${ID}.scope`, ID, 'docker'],                          // systemd driver
    [`/system.slice/containerd.service/kubepods-besteffort-pod1.slice:cri-containerd:${ID}`, ID, 'containerd'],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice/cri-containerd-${ID}.scope`, ID, 'containerd'],
    [`/kubepods/besteffort/pod0f1e2d3c-0000-1111-2222-333344445555/${ID}`, ID, 'containerd'],
    [`/machine.slice/libpod-${ID}.scope`, ID, 'podman'],
    [`/kubepods.slice/kubepods-pod1.slice/crio-${ID}.scope`, ID, 'cri-o'],
    [`/machine.slice/libpod-conmon-${ID}.scope`, undefined],                    // podman's monitor, a host process
    [`/kubepods.slice/kubepods-pod1.slice/crio-conmon-${ID}.scope`, undefined],  // CRI-O's monitor
    ['/user.slice/user-0.slice/session-1.scope', undefined],
    ['/system.slice/ssh.service', undefined],
    ['/', undefined],
  ];
  for (const [path, id, runtime] of cases) {
    const got = containerIdFromCgroupPath(path);
    assert.equal(got?.id, id, path);
    if (runtime) assert.equal(got?.runtime, runtime, path);
  }
});

// On a host whose /sys/fs/cgroup is cgroup2 the mountinfo files below are not consulted.
const hostIsV2 = detectCgroupHierarchy().mode === 'v2';

test('the reference hierarchy: the v1 memory controller, or the v2 unified tree', { skip: hostIsV2 && 'this host mounts cgroup2 at /sys/fs/cgroup, which is used before any mountinfo' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-mountinfo-'));
  const v1 = join(dir, 'v1');
  writeFileSync(v1, [
    '25 1 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755',
    '26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '27 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  ].join('\n'));
  const v2 = join(dir, 'v2');
  writeFileSync(v2, '30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n');
  const none = join(dir, 'none');
  writeFileSync(none, '22 1 0:21 / /proc rw - proc proc rw\n');
  assert.deepEqual(detectCgroupHierarchy(v1), { mode: 'v1-memory', root: '/sys/fs/cgroup/memory' });
  assert.deepEqual(detectCgroupHierarchy(v2), { mode: 'v2', root: '/sys/fs/cgroup' });
  assert.throws(() => detectCgroupHierarchy(none), /no cgroup hierarchy found/);
});

test("a key is found back in the hierarchy: a running container's cgroup, and nothing for an unknown key", { skip: missingForContainerTests() }, async () => {
  const h = detectCgroupHierarchy();
  const name = uniqueName('vigil-cgkey');
  try {
    docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sleep', '30');
    const pid = docker('inspect', '-f', '{{.State.Pid}}', name);
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => (h.mode === 'v2' ? l.startsWith('0::') : /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l)));
    assert.ok(line, `the container's cgroup line in /proc/${pid}/cgroup`);
    const path = line.slice(line.lastIndexOf(':') + 1);
    const key = keyOfCgroupPath(h, path);
    assert.ok(key !== undefined);
    assert.equal(await findCgroupPathByKey(h, key), path);
    assert.equal(await findCgroupPathByKey(h, 1n << 60n), undefined);
  } finally {
    docker('rm', '-f', name);
  }
});
