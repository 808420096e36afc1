// Maps a container key (the kernfs id of a task's cgroup in the reference hierarchy,
// as the BPF side reads it) to the cgroup's path, and a path to the container id the
// runtime put in it. Works on cgroup v1 (the memory hierarchy) and v2 (unified).
import { readFileSync, statSync, statfsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupMode } from '../sensor/index.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface CgroupHierarchy {
  mode: CgroupMode;
  root: string; // mount point of the reference hierarchy
}

/** Finds the hierarchy the kernel side keys containers by. */
export function detectCgroupHierarchy(mountinfo = '/proc/self/mountinfo'): CgroupHierarchy {
  try {
    if (statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC) return { mode: 'v2', root: '/sys/fs/cgroup' };
  } catch {
    // fall through to mountinfo
  }
  let v2Root: string | undefined;
  for (const line of readFileSync(mountinfo, 'utf8').split('\n')) {
    // id parent major:minor root mountpoint options - fstype source superoptions
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4];
    const [fsType, , superOptions] = right.split(' ');
    if (!mountPoint) continue;
    if (fsType === 'cgroup' && superOptions?.split(',').includes('memory')) return { mode: 'v1-memory', root: mountPoint };
    if (fsType === 'cgroup2') v2Root ??= mountPoint;
  }
  if (v2Root) return { mode: 'v2', root: v2Root };
  throw new Error('no cgroup hierarchy found: mount cgroup2 at /sys/fs/cgroup, or the cgroup v1 memory controller');
}

/** The path (relative to the hierarchy root) of a process's cgroup, from /proc/PID/cgroup. */
export function cgroupPathOfPid(h: CgroupHierarchy, pid: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  for (const line of text.split('\n')) {
    const [hid, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (h.mode === 'v2' && hid === '0' && controllers === '') return path;
    if (h.mode === 'v1-memory' && controllers?.split(',').includes('memory')) return path;
  }
  return undefined;
}

/** The container key of a cgroup path: the inode of its directory, which is its kernfs id. */
export function keyOfCgroupPath(h: CgroupHierarchy, path: string): bigint | undefined {
  try {
    return BigInt(statSync(join(h.root, path)).ino);
  } catch {
    return undefined;
  }
}

/**
 * Walks the hierarchy for the cgroup whose key is `key` (bounded depth: runtimes nest a
 * few levels), breadth first. Asynchronous: a host with thousands of cgroups must not
 * hold the event loop while it looks.
 */
export async function findCgroupPathByKey(h: CgroupHierarchy, key: bigint, maxDepth = 8): Promise<string | undefined> {
  const keyOf = async (path: string): Promise<bigint | undefined> => {
    try {
      return BigInt((await stat(join(h.root, path))).ino);
    } catch {
      return undefined;
    }
  };
  if ((await keyOf('/')) === key) return '/';
  let level = ['/'];
  for (let depth = 1; depth <= maxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      let entries;
      try {
        entries = await readdir(join(h.root, rel), { withFileTypes: true });
      } catch {
        continue; // removed meanwhile
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const child = rel === '/' ? `/${e.name}` : `${rel}/${e.name}`;
        if ((await keyOf(child)) === key) return child;
        next.push(child);
      }
    }
    level = next;
  }
  return undefined;
}

export interface CgroupContainerId {
  id: string;
  runtime: 'docker' | 'containerd' | 'cri-o' | 'podman' | 'lxc' | 'nspawn' | 'unknown';
  /** The container's name when the path carries one (LXC, Incus, systemd-nspawn: their id is the name). */
  name?: string;
}

/** systemd's unit-name escaping (machine-my\x2dbox.scope is machine "my-box"). */
function unescapeUnitName(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const HEX64 = /([0-9a-f]{64})/;

/**
 * The container id a runtime encoded in a cgroup path, or undefined for a cgroup that
 * is not a container's. Covers the cgroupfs driver (/docker/<id>), the systemd driver
 * (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope)
 * and Kubernetes pod trees (/kubepods/.../<id>).
 */
export function containerIdFromCgroupPath(path: string): CgroupContainerId | undefined {
  const parts = path.split('/').filter(Boolean);
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] as string;
    const m = HEX64.exec(part);
    if (!m) continue;
    const id = m[1] as string;
    // A container's monitor (podman's and CRI-O's conmon) has a scope named after the
    // container but is a host process: its cgroup is not the container's.
    if (part.startsWith('libpod-conmon-') || part.startsWith('crio-conmon-')) return undefined;
    if (part.startsWith('docker-') || parts[i - 1] === 'docker') return { id, runtime: 'docker' };
    if (part.startsWith('cri-containerd-')) return { id, runtime: 'containerd' };
    if (part.startsWith('crio-')) return { id, runtime: 'cri-o' };
    if (part.startsWith('libpod-')) return { id, runtime: 'podman' };
    if (parts.some((p) => p.startsWith('kubepods'))) return { id, runtime: 'containerd' };
    if (part === id) return { id, runtime: 'unknown' };
  }
  // Runtimes that name a container's cgroup after the container, not a 64-hex id. The
  // deepest match wins: the container's own init (systemd in an nspawn machine, LXC's
  // payload) makes cgroups of its own below.
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] as string;
    // LXC 4+ and Incus/LXD: lxc.payload.NAME is the container; lxc.monitor.NAME its monitor on the host.
    if (part.startsWith('lxc.monitor.')) return undefined;
    if (part.startsWith('lxc.payload.') && part.length > 'lxc.payload.'.length) {
      const name = part.slice('lxc.payload.'.length);
      return { id: name, runtime: 'lxc', name };
    }
    // LXC before 4: /lxc/NAME.
    if (i === 1 && parts[0] === 'lxc') return { id: part, runtime: 'lxc', name: part };
    // systemd-nspawn (and machinectl, and VMs registered with systemd-machined): machine.slice/machine-NAME.scope.
    const m = /^machine-(.+)\.scope$/.exec(part);
    if (m && parts[i - 1] === 'machine.slice') {
      const name = unescapeUnitName(m[1] as string);
      return { id: name, runtime: 'nspawn', name };
    }
  }
  return undefined;
}
