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
  /** Start time from /proc/PID/stat: the pid still names this process when it is unchanged. */
  startTime: string;
  /** Its threads other than the leader. */
  threads: number[];
  /** The container key it is remembered under. */
  key: bigint;
  /** How its container was told: its cgroup is still the container's, or it shares a container's pid namespace. */
  by: 'cgroup' | 'pid namespace';
}

interface ProcInfo { pid: number; ppid: number; startTime: string; mnt: number; pidNs: number; containerKey: bigint | undefined }

/** Parent pid and start time (clock ticks since boot) from /proc/PID/stat; undefined when gone. */
export function statOf(pid: number, proc = '/proc'): { ppid: number; startTime: string } | undefined {
  try {
    const text = readFileSync(`${proc}/${pid}/stat`, 'utf8');
    // comm, in parentheses, may hold spaces and parentheses: fields follow the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

function inode(path: string): number | undefined {
  try {
    return namespaceInode(path);
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

/**
 * Processes in the host's mount namespace that belong to a container: their cgroup is a
 * container's and they descend from a task inside it, or they are in a pid namespace
 * (which no process can leave) whose other members are in a container. A host process in
 * a pid namespace of no container (an `unshare --pid` on the host) is left alone. The
 * members of a pod's shared pid namespace are credited to the first container found.
 */
export function findEscapedProcesses(h: CgroupHierarchy, hostMnt: number, hostPidNs: number, proc = '/proc'): EscapedProcess[] {
  const infos: ProcInfo[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const mnt = inode(`${proc}/${pid}/ns/mnt`);
    const pidNs = inode(`${proc}/${pid}/ns/pid`);
    const stat = statOf(pid, proc);
    if (mnt === undefined || pidNs === undefined || stat === undefined) continue;
    const cgroup = cgroupPathOfPid(h, pid);
    const containerKey = cgroup !== undefined && containerIdFromCgroupPath(cgroup) ? keyOfCgroupPath(h, cgroup) : undefined;
    infos.push({ pid, ...stat, mnt, pidNs, containerKey });
  }
  const byPid = new Map(infos.map((p) => [p.pid, p]));
  const keyOfPidNs = new Map<number, bigint>();
  for (const p of infos) {
    if (p.mnt === hostMnt || p.pidNs === hostPidNs || keyOfPidNs.has(p.pidNs) || p.containerKey === undefined) continue;
    keyOfPidNs.set(p.pidNs, p.containerKey);
  }
  // A container cgroup alone is not enough: a runtime may keep host processes in the
  // container's cgroup (a sandbox's shim and VMM, runc's init on its way in). An escapee
  // also descends from a task inside the container, or shares its pid namespace.
  const descendsFromContainer = (p: ProcInfo, key: bigint): boolean => {
    let at = byPid.get(p.ppid);
    for (let depth = 0; at && depth < 64; depth++, at = byPid.get(at.ppid)) {
      if (at.mnt !== hostMnt && at.containerKey === key) return true;
      if (at.pid <= 1) break;
    }
    return false;
  };
  const found: EscapedProcess[] = [];
  for (const p of infos) {
    if (p.mnt !== hostMnt) continue;
    const byPidNs = p.pidNs !== hostPidNs ? keyOfPidNs.get(p.pidNs) : undefined;
    const cgroupKey = p.containerKey;
    const byCgroup = cgroupKey !== undefined && (byPidNs === cgroupKey || descendsFromContainer(p, cgroupKey)) ? cgroupKey : undefined;
    const key = byCgroup ?? byPidNs;
    if (key === undefined) continue;
    found.push({ pid: p.pid, startTime: p.startTime, threads: threadsOf(proc, p.pid), key, by: byCgroup !== undefined ? 'cgroup' : 'pid namespace' });
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

/** For log lines: the command line of a process, or '?' when it is gone. */
export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || '?';
  } catch {
    return '?';
  }
}
