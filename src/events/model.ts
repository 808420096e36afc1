// The event model: one source of truth for what an event is, from the raw record the
// kernel sent (RawRecord) to the enriched event every output renders (VigilEvent).

export type EventKind = 'exec' | 'fork' | 'exit' | 'lost';

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
}

export type RawRecord =
  | { kind: 'exec'; task: TaskContext; filename: string; argv: string[]; argvTruncated: boolean }
  | { kind: 'fork'; task: TaskContext; childPid: number; childNsPid: number }
  | { kind: 'exit'; task: TaskContext; exitCode: number; signal: number };

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
  args: string[];
  argsTruncated: boolean;
  uid: number;
  gid: number;
  caps: string[];          // effective capability names
}

export interface Verdict {
  level: 'NORMAL' | 'INSECURE';
  rules: string[];
  action: string;
}

/** One line of the JSON-lines log. Field order here is the order written. */
export interface VigilEvent {
  seq: number;
  time: string;            // wall clock, nanoseconds since the epoch, decimal (exact)
  host: string;
  kind: EventKind;
  syscall: string;
  args: Record<string, string | number | boolean | string[]>;
  ret: number | null;
  container: ContainerRef;
  process: ProcessRef;
  namespaces: { mnt: number; pid: number; cgroupId: string; containerKey: string };
  verdict: Verdict;
}
