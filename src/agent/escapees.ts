// Processes that left their container before the agent started. The kernel side
// remembers a container task from the first time it sees it in the container; one that
// had already joined the host's mount namespace (setns) when the agent started would
// pass for a host process. At start the agent looks for them in /proc and hands them to
// the kernel side, which then watches them, and what they fork, like any container task.
import { readdirSync, readFileSync } from 'node:fs';
import { cgroupPathOfPid, containerIdFromCgroupPath, keyOfCgroupPath, type CgroupHierarchy } from '../containers/index.js';
import { namespaceInode } from '../sensor/index.js';

export interface EscapedProcess {
  pid: number;
  /** Its threads other than the leader. */
  threads: number[];
  /** The container key it is remembered under. */
  key: bigint;
  /** How its container was told: its cgroup is still the container's, or it shares a container's pid namespace. */
  by: 'cgroup' | 'pid namespace';
}

interface ProcInfo { pid: number; mnt: number; pidNs: number; cgroup: string | undefined }

function inode(path: string): number | undefined {
  try {
    return namespaceInode(path);
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

/**
 * Processes in the host's mount namespace that belong to a container: their cgroup is a
 * container's, or they are in a pid namespace (which no process can leave) whose other
 * members are in a container. A host process in a pid namespace of no container (an
 * `unshare --pid` on the host) is left alone.
 */
export function findEscapedProcesses(h: CgroupHierarchy, hostMnt: number, hostPidNs: number, proc = '/proc'): EscapedProcess[] {
  const infos: ProcInfo[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const mnt = inode(`${proc}/${pid}/ns/mnt`);
    const pidNs = inode(`${proc}/${pid}/ns/pid`);
    if (mnt === undefined || pidNs === undefined) continue;
    infos.push({ pid, mnt, pidNs, cgroup: cgroupPathOfPid(h, pid) });
  }
  const containerKey = (cgroup: string | undefined) => (cgroup !== undefined && containerIdFromCgroupPath(cgroup) ? keyOfCgroupPath(h, cgroup) : undefined);
  const keyOfPidNs = new Map<number, bigint>();
  for (const p of infos) {
    if (p.mnt === hostMnt || p.pidNs === hostPidNs || keyOfPidNs.has(p.pidNs)) continue;
    const key = containerKey(p.cgroup);
    if (key !== undefined) keyOfPidNs.set(p.pidNs, key);
  }
  const found: EscapedProcess[] = [];
  for (const p of infos) {
    if (p.mnt !== hostMnt) continue;
    const byCgroup = containerKey(p.cgroup);
    const byPidNs = p.pidNs !== hostPidNs ? keyOfPidNs.get(p.pidNs) : undefined;
    const key = byCgroup ?? byPidNs;
    if (key === undefined) continue;
    found.push({ pid: p.pid, threads: threadsOf(proc, p.pid), key, by: byCgroup !== undefined ? 'cgroup' : 'pid namespace' });
  }
  return found;
}

function threadsOf(proc: string, pid: number): number[] {
  try {
    return readdirSync(`${proc}/${pid}/task`).map(Number).filter((t) => t !== pid && Number.isInteger(t));
  } catch {
    return [];
  }
}

/** The host's pid namespace: init's, or the agent's own where init's cannot be read. */
export function hostPidNamespace(): number {
  try {
    return namespaceInode('/proc/1/ns/pid');
  } catch {
    return namespaceInode('/proc/self/ns/pid');
  }
}

/** For log lines: the command line of a process, or '?' when it is gone. */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || '?';
  } catch {
    return '?';
  }
}
