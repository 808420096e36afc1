// The event model: one source of truth for what an event is, from the raw record the
// kernel sent (RawRecord) to the enriched event every output renders (VigilEvent).

/**
 * exec, fork, exit: process life cycle (sched tracepoints). file, process, network:
 * system calls of those categories. capability: a cap_capable check. tcp: a TCP
 * state change. syscall: a raw streamed system call. lost: records the kernel dropped.
 * agent: the agent's own records in the tamper-evident log (start and self-measurement,
 * heartbeat, anchoring outages, log recovery, stop).
 */
export type EventKind = 'exec' | 'fork' | 'exit' | 'file' | 'process' | 'network' | 'capability' | 'tcp' | 'syscall' | 'lost' | 'response' | 'io_uring' | 'agent';

/** What every kernel record says about the task that caused it. */
export interface TaskContext {
  timeNs: bigint;          // CLOCK_MONOTONIC
  pid: number;             // host thread id
  tgid: number;            // host process id
  nsPid: number;           // process id inside its pid namespace
  ppid: number;            // host pid of the parent
  nsPpid: number;          // parent's pid in the same namespace, 0 when outside it
  uid: number;
  gid: number;
  mntNs: number;
  pidNs: number;
  capEffective: bigint;
  cgroupId: bigint;
  containerKey: bigint;
  comm: string;
  parentComm: string;
  truncated: boolean;
  /** The runtime preparing the container (VIGIL_FLAG_CONTAINER_SETUP), not the container's own code. */
  containerSetup: boolean;
  /** The kernel killed the task at this record (a kill it decides itself), or tried and failed. */
  kernelKill: 'done' | 'failed' | undefined;
  /** 1 + the kernel rule the in-kernel kill (bpf/enforce.bpf.c) killed the task for; 0 or absent: none. */
  kernelRule?: number;
}

/** A socket as the kernel holds it (addresses as text, ports in host order). */
export interface SockInfo {
  family: number;
  type: number;
  protocol: number;
  state: number;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
}

export interface SyscallRecord {
  kind: 'syscall';
  task: TaskContext;
  nr: number;
  ret: bigint;
  args: bigint[];
  durationNs: bigint;
  raw: boolean;               // streamed: number, arguments and return value only
  strings: string[];          // the user strings the rule captured (str0, str1)
  base: string | undefined;   // directory the based string is relative to
  /** Directory the other string (rename's, link's new name) is relative to, read when it is not base. */
  base2?: string | undefined;
  fdPath: string | undefined; // the kernel's path of the described fd
  blob: Buffer | undefined;   // raw argument bytes (a sockaddr, an open_how, ...)
  sock: SockInfo | undefined; // the described fd's socket
  pathCut: boolean;
  notEntered: boolean;       // refused before it ran (seccomp)
  stringCut: boolean;        // a user string was longer than the room for it
  /** The ABI of the call: 'i386' (int 0x80, sysenter: nr is the i386 number), 'x32', or x86-64. */
  abi: 'x86_64' | 'i386' | 'x32';
  argsChanged: boolean;      // a user string or blob differed between sys_enter and sys_exit
  readAtExit: boolean;       // an argument was not in memory at sys_enter: read at sys_exit only
  rootBase: boolean;         // base is the task's chroot, below which the absolute string lies
  /** The inode the call changed (chmod, chown), by the kernel: its path within its file system. */
  kernelName: string | undefined;
  /** kernelName is whole and on the file system of the task's root: the container's own path of the file. */
  kernelNameWhole: boolean;
  /** Of a unix socket: the file its peer is bound to, as the kernel holds it (the host's path of a bind-mounted socket). */
  peerPath: string | undefined;
  /** From sys_enter: the call is outside the container's allow-list (raw: number and arguments). */
  notAllowed: boolean;
}

/**
 * What a standard stream (fd 0, 1 or 2) of a newly exec'd program is: not open, a
 * regular file, a directory, a terminal (/dev/pts/N, a tty or serial line, /dev/tty,
 * /dev/console, /dev/ptmx), another character device (/dev/null), a pipe or FIFO, a
 * socket (unix, IPv4, IPv6, or another family: netlink, packet), or anything else (an
 * anon inode such as an eventfd, a pidfd, a block device).
 */
export type StdioKind = 'none' | 'file' | 'dir' | 'tty' | 'chr' | 'pipe' | 'unix' | 'inet' | 'inet6' | 'socket' | 'other';

export type RawRecord =
  /** filename as passed to execve; exe the file the kernel executed ('' when it could not be read);
   * stdio what fds 0, 1 and 2 of the new program are (three entries). */
  | { kind: 'exec'; task: TaskContext; filename: string; exe: string; exeTruncated: boolean; argv: string[]; argvTruncated: boolean; stdio: StdioKind[]; env?: string[]; envTruncated?: boolean }
  | { kind: 'fork'; task: TaskContext; childPid: number; childNsPid: number }
  | { kind: 'exit'; task: TaskContext; exitCode: number; signal: number }
  | SyscallRecord
  | { kind: 'capability'; task: TaskContext; cap: number; ret: number }
  | { kind: 'tcp'; task: TaskContext; oldState: number; newState: number; sock: SockInfo }
  | CgroupRecord
  | IoUringRecord;

/**
 * io_uring (bpf/io_uring.bpf.c): a ring made (op 'setup'), an io_uring_register call
 * ('register'), or a request submitted through a ring (op = its IORING_OP_* number),
 * read from the kernel's copy of the request at submission.
 */
export interface IoUringRecord {
  kind: 'io_uring';
  task: TaskContext;
  op: number;
  fd: number;
  arg0: bigint;
  arg1: bigint;
  arg2: bigint;
  ret: bigint;
  names: string[];      // the request's names, as the kernel copied them (0, 1 or 2)
  base: string | undefined; // the directory a relative first name is relative to
  addr: Buffer | undefined; // the sockaddr of connect/bind
  nameCut: boolean;
  baseCut: boolean;
  sqpoll: boolean;      // submitted by the ring's kernel thread (IORING_SETUP_SQPOLL)
}

/**
 * A cgroup made in the reference hierarchy (cgroup:cgroup_mkdir): not an event, but the
 * identity of the key its tasks' records will carry (task.containerKey = id), sent before
 * any of them. task names the task that made it (pid, tgid, comm; the rest is 0).
 */
export interface CgroupRecord {
  kind: 'cgroup';
  task: TaskContext;
  id: bigint;           // kernfs id: the container key of the cgroup's tasks
  level: number;        // depth below the hierarchy's root
  path: string;         // from the hierarchy's root, as /proc/PID/cgroup writes it
  pathTruncated: boolean;
}

export type EventArgs = Record<string, string | number | boolean | string[]>;

export interface ContainerRef {
  id: string;              // full runtime id ('' when not known)
  name: string;
  image: string;
  runtime: string;         // docker, containerd, cri-o, ... or 'unknown'
}

export interface ProcessRef {
  pid: number;             // host pid
  nsPid: number;           // pid as seen inside the container
  ppid: number;
  parent: string;          // parent's comm
  comm: string;
  exe: string;
  args: readonly string[];
  argsTruncated: boolean;
  uid: number;
  gid: number;
  caps: readonly string[]; // effective capability names
  /** The container runtime setting the container up (runc's init, a `docker exec` before its
   * exec), not code from the container: marked in the kernel, not by name. */
  containerSetup: boolean;
  /** Enrichment the rules read. The comm of each ancestor at this process's birth, parent first (at most 8). */
  ancestors: readonly string[];
  /** The process, or one it descends from, came into the container from outside (`docker exec`), not from its init. */
  entered: boolean;
  /** What fd 0, 1 and 2 were at the process's last exec (tty, pipe, inet, unix, file, chr, none, ...); [] when unknown. */
  stdio: readonly StdioKind[];
  /** The executable was written or changed in the container since it started (its writable layer holds it). */
  exeWritten: boolean;
  /** The executable is a file of the image's layers (false: written since start, or on a volume, tmpfs or bind mount). */
  exeInImage: boolean;
  /** The parent's executable, as the table knows it ('' when not): a parent can rename itself, not its exe. */
  parentExe: string;
  /** The program that runs: the executable's file name, or for a multi-call binary (busybox) the applet argv[0] names. */
  name: string;
}

export interface Verdict {
  level: 'NORMAL' | 'INSECURE';
  /** Names of every rule that matched (a `log` rule's name too, on a NORMAL event). */
  rules: string[];
  /** The strongest action decided: none, log, alert, pause, stop or kill. */
  action: string;
  /** Of an INSECURE verdict: the highest severity among the rules that made it so. */
  severity?: string;
}

/** One line of the JSON-lines log. Field order here is the order written. */
export interface VigilEvent {
  seq: number;
  time: string;            // wall clock, nanoseconds since the epoch, decimal (exact)
  host: string;
  kind: EventKind;
  syscall: string;
  args: EventArgs;
  ret: number | null;
  error?: string;          // errno name when ret is a failure (ENOENT, ECONNREFUSED, ...)
  container: ContainerRef;
  process: ProcessRef;
  namespaces: { mnt: number; pid: number; cgroupId: string; containerKey: string };
  verdict: Verdict;
  /** What the countermeasures did about this event (src/respond, docs/respond.md); absent when nothing was asked. */
  response?: ResponseInfo;
}

/**
 * One countermeasure and its outcome, on the event that asked for it and on the `response`
 * record written for it. layer: who acted (the kernel's sys_enter program, the agent from user
 * space, the container runtime); outcome: done, pending (sent to the runtime: the response
 * record that follows says how it ended), would (dry run), limited (rate limit or already
 * taken), protected (a container never acted on), failed (error says why).
 */
export interface ResponseInfo {
  action: 'kill' | 'pause' | 'stop' | 'isolate';
  target: 'process' | 'container';
  layer: 'kernel' | 'user-space' | 'runtime';
  outcome: 'done' | 'pending' | 'would' | 'limited' | 'protected' | 'failed';
  by: 'policy' | 'operator';
  rule?: string;
  reason?: string;
  error?: string;
  [detail: string]: string | number | boolean | string[] | undefined;
}
