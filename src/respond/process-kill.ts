// SIGKILL from user space, for a process named by an event, that never hits another
// process that reused its pid. The pid is pinned with a pidfd first (pidfd_open: the fd
// names that process, whatever happens to the number); then /proc/PID must show a
// process that had started by the event's time, in the event's pid namespace, with the
// event's in-namespace pid. A process /proc shows after the pidfd was opened that passes
// is the pidfd's own: a newcomer with that pid started after the event, and so fails.
// The signal then goes through the pidfd (pidfd_send_signal), not through the number.
import koffi from 'koffi';
import { readdirSync, readFileSync, statSync } from 'node:fs';

const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_CLOCK_GETTIME = 228;
const CLOCK_BOOTTIME = 7;
const SIGKILL = 9;
const ESRCH = 3;

type SyscallFn = (nr: number, ...args: unknown[]) => number | bigint;
interface Libc { syscall: SyscallFn; close: (fd: number) => number }
let libc: Libc | undefined;

function lib(): Libc {
  if (!libc) {
    const handle = koffi.load('libc.so.6');
    libc = {
      syscall: handle.func('long syscall(long number, ...)') as SyscallFn,
      close: handle.func('int close(int fd)') as (fd: number) => number,
    };
  }
  return libc;
}

/** The process an event named, as the event saw it. */
export interface KillTarget {
  pid: number;
  nsPid: number;
  /** Inode of its pid namespace (0: not known, not checked). */
  pidNs: number;
  /** Wall-clock ns of the event (its `time`). */
  timeNs: bigint;
}

/** done: the signal went through the pidfd; descendants: children it forked since the event, killed with it. */
export type KillResult = { outcome: 'done'; descendants: number } | { outcome: 'gone' | 'reused' | 'failed'; error: string };

/** USER_HZ: /proc/PID/stat's start time is in these ticks since boot. */
const TICK_NS = 10_000_000n;

/** CLOCK_BOOTTIME minus the wall clock, in ns, now (start times in /proc are boot-time based). */
function bootMinusWallNs(): bigint {
  const ts = Buffer.alloc(16);
  const r = Number(lib().syscall(SYS_CLOCK_GETTIME, 'int', CLOCK_BOOTTIME, 'void *', ts));
  if (r !== 0) throw new Error(`clock_gettime(CLOCK_BOOTTIME) failed (errno ${koffi.errno()})`);
  const boot = ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
  return boot - BigInt(Date.now()) * 1_000_000n;
}

/** Why /proc/PID is not the event's process, or undefined when it is. */
function mismatch(t: KillTarget): string | undefined {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${t.pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${t.pid}/status`, 'utf8');
  } catch {
    return 'gone';
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTicks = BigInt(fields[19] ?? '0');
  // One tick of slack: the start time is rounded down to 10 ms.
  const eventBootNs = t.timeNs + bootMinusWallNs();
  if (startTicks * TICK_NS > eventBootNs + TICK_NS) return `pid ${t.pid} now names a process started after the event`;
  const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
  const inner = Number(nspid?.[nspid.length - 1] ?? NaN);
  if (t.nsPid > 0 && inner !== t.nsPid) return `pid ${t.pid} is pid ${inner} in its namespace, the event's process was ${t.nsPid}`;
  if (t.pidNs > 0) {
    try {
      const ino = statSync(`/proc/${t.pid}/ns/pid`).ino;
      if (ino !== t.pidNs) return `pid ${t.pid} is in pid namespace ${ino}, the event's process was in ${t.pidNs}`;
    } catch {
      return 'gone';
    }
  }
  return undefined;
}

/** Start time in ns of boot time (10 ms ticks) and the parent, from /proc/PID/stat; undefined when gone. */
function startAndParent(pid: number): { startNs: bigint; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { startNs: BigInt(f[19] ?? '0') * TICK_NS, ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

/**
 * Pidfds of the processes the target forked since the event (children, their children...):
 * a reverse shell's `cat /etc/shadow` would otherwise outlive the shell and still write to
 * the socket. Each is pinned like the target: a pidfd, then its parent and its start time
 * checked. Read from /proc/PID/task/TID/children; what forks while this runs can escape.
 */
function pinDescendants(pid: number, eventBootNs: bigint, c: Libc): number[] {
  const fds: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && fds.length < 1024) {
    const parent = queue.shift() as number;
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${parent}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let kids: string[] = [];
      try {
        kids = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean);
      } catch {
        continue;
      }
      for (const k of kids.map(Number)) {
        const fd = Number(c.syscall(SYS_PIDFD_OPEN, 'int', k, 'uint', 0));
        if (fd < 0) continue;
        const st = startAndParent(k);
        // Still that parent's child (not a reused pid), and born after the event (minus a tick).
        if (st && st.ppid === parent && st.startNs + TICK_NS >= eventBootNs) {
          fds.push(fd);
          queue.push(k);
        } else {
          c.close(fd);
        }
      }
    }
  }
  return fds;
}

/** Sends SIGKILL to the event's process, or says why it did not. */
export function killProcess(t: KillTarget): KillResult {
  const c = lib();
  const fd = Number(c.syscall(SYS_PIDFD_OPEN, 'int', t.pid, 'uint', 0));
  if (fd < 0) {
    const errno = koffi.errno();
    return errno === ESRCH ? { outcome: 'gone', error: 'the process had already exited' } : { outcome: 'failed', error: `pidfd_open(${t.pid}) failed (errno ${errno})` };
  }
  try {
    const why = mismatch(t);
    if (why === 'gone') return { outcome: 'gone', error: 'the process had already exited' };
    if (why) return { outcome: 'reused', error: why };
    const kids = pinDescendants(t.pid, t.timeNs + bootMinusWallNs(), c);
    try {
      const r = Number(c.syscall(SYS_PIDFD_SEND_SIGNAL, 'int', fd, 'int', SIGKILL, 'void *', null, 'uint', 0));
      let descendants = 0;
      for (const k of kids) if (Number(c.syscall(SYS_PIDFD_SEND_SIGNAL, 'int', k, 'int', SIGKILL, 'void *', null, 'uint', 0)) === 0) descendants++;
      if (r !== 0) {
        const errno = koffi.errno();
        return errno === ESRCH ? { outcome: 'gone', error: 'the process had already exited' } : { outcome: 'failed', error: `pidfd_send_signal failed (errno ${errno})` };
      }
      return { outcome: 'done', descendants };
    } finally {
      for (const k of kids) c.close(k);
    }
  } finally {
    c.close(fd);
  }
}
