// The container a cgroup path names, for each runtime's layout (cgroupfs and systemd
// drivers, v1 and v2), and the runtime helpers' own cgroups that are not containers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerIdFromCgroupPath } from '../../src/containers/index.js';

const ID = 'a'.repeat(32) + 'b'.repeat(32);

test('every runtime\'s cgroup layout names its container', () => {
  const cases: Array<[string, { id: string; runtime: string; name?: string } | undefined]> = [
    [`/docker/${ID}`, { id: ID, runtime: 'docker' }],
    [`/system.slice/docker-${ID}.scope`, { id: ID, runtime: 'docker' }],
    [`/machine.slice/libpod-${ID}.scope`, { id: ID, runtime: 'podman' }],
    [`/machine.slice/libpod-${ID}.scope/container`, { id: ID, runtime: 'podman' }],
    [`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, { id: ID, runtime: 'podman' }],
    [`/machine.slice/libpod-conmon-${ID}.scope`, undefined],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/crio-${ID}.scope`, { id: ID, runtime: 'cri-o' }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-${ID}.scope`, { id: ID, runtime: 'containerd' }],
    [`/kubepods/burstable/pod1234-5678/${ID}`, { id: ID, runtime: 'containerd' }],
    [`/default/${ID}`, { id: ID, runtime: 'unknown' }],
    ['/lxc.payload.web1', { id: 'web1', runtime: 'lxc', name: 'web1' }],
    ['/lxc.payload.web1/system.slice/cron.service', { id: 'web1', runtime: 'lxc', name: 'web1' }],
    ['/lxc.monitor.web1', undefined],
    ['/lxc/old-style', { id: 'old-style', runtime: 'lxc', name: 'old-style' }],
    ['/machine.slice/machine-box.scope', { id: 'box', runtime: 'nspawn', name: 'box' }],
    ['/machine.slice/machine-my\\x2dbox.scope/payload/system.slice/sshd.service', { id: 'my-box', runtime: 'nspawn', name: 'my-box' }],
    ['/system.slice/cron.service', undefined],
    ['/user.slice/user-1000.slice/session-3.scope', undefined],
  ];
  for (const [path, want] of cases) assert.deepEqual(containerIdFromCgroupPath(path), want, path);
});
