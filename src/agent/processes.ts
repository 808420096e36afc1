// The agent's table of container processes, kept from exec/fork/exit records, so
// every event can name the executable and arguments of the process that caused it,
// including processes that forked without exec and ones that ran before the agent.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import type { RawRecord, ProcessRef, StdioKind } from '../events/index.js';
import { capabilityNames } from '../events/index.js';

interface ProcessEntry {
  exe: string;
  args: readonly string[];
  argsTruncated: boolean;
  comm: string;
  /** Parent first, frozen: the lineage at birth (a reparented process keeps it). */
  ancestors: readonly string[];
  entered: boolean;
  stdio: readonly StdioKind[];
  exeWritten: boolean;
  exeInImage: boolean;
  name: string;
}

/** Multi-call binaries: the program they run is the one argv[0] names. */
const MULTI_CALL = new Set(['busybox', 'toybox']);

/** The program an exec runs (see ProcessRef.name). */
export function programName(exe: string, argv: readonly string[]): string {
  const base = exe.slice(exe.lastIndexOf('/') + 1);
  const arg0 = argv[0] ?? '';
  const applet = arg0.slice(arg0.lastIndexOf('/') + 1).replace(/^-/, '');
  return MULTI_CALL.has(base) && applet !== '' ? applet : base;
}

/**
 * Environment variables whose values every exec event carries, opted in or not: they
 * change what the dynamic loader, the C library or a shell does before the program's own
 * code runs (preloads, audit libraries, tunables, BASH_ENV), or where its traffic goes
 * (proxies). Other values stay out: environments hold secrets.
 */
const SECURITY_ENV = new Set(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'GLIBC_TUNABLES', 'BASH_ENV']);
const PROXY_ENV = /_proxy$/i;

export function securityRelevantEnv(name: string): boolean {
  return SECURITY_ENV.has(name) || PROXY_ENV.test(name);
}

/**
 * The exec event's environment fields: env_names (every variable's name, in order),
 * env_values (NAME=value of the security-relevant ones), and with the whole environment
 * opted in (capture.environment) envp as well. Omitted when empty.
 */
export function environmentArgs(env: readonly string[], whole: boolean): { env_names?: string[]; env_values?: string[]; envp?: string[] } {
  const names: string[] = [];
  const values: string[] = [];
  for (const entry of env) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    names.push(name);
    if (securityRelevantEnv(name)) values.push(entry);
  }
  const out: { env_names?: string[]; env_values?: string[]; envp?: string[] } = {};
  if (names.length > 0) out.env_names = names;
  if (values.length > 0) out.env_values = values;
  if (whole) out.envp = [...env];
  return out;
}

const MAX_ANCESTORS = 8;
const NONE: readonly StdioKind[] = Object.freeze([]);

export class ProcessTable {
  private readonly entries = new Map<number, ProcessEntry>();
  /** Pids found gone at the last sweep: removed if still gone at the next. */
  private gone = new Set<number>();

  get size(): number {
    return this.entries.size;
  }

  /** Updates the table from a record and returns the process as the event shows it. */
  apply(r: RawRecord): ProcessRef {
    const t = r.task;
    let entry: ProcessEntry;
    if (r.kind === 'exec') {
      // Frozen: every event of the process shares this array, and its JSON is cached.
      // The kernel's path of the executed file when it has one: a name such as
      // /proc/self/exe or /dev/fd/3 says nothing about what ran.
      // A cut path lacks its leading levels: the name passed is then the better guess.
      const before = this.entries.get(t.tgid);
      // A process whose parent is outside the container's pid namespace, and that is not
      // the container's init, was put there from outside: `docker exec` (runc's init
      // joins the namespaces, its child is reparented to the runtime's shim).
      const entered = (before?.entered ?? false) || (t.nsPpid === 0 && t.nsPid !== 1 && !t.containerSetup);
      entry = {
        exe: r.exe && !r.exeTruncated ? r.exe : r.filename,
        args: Object.freeze(r.argv),
        argsTruncated: r.argvTruncated,
        comm: t.comm,
        ancestors: before?.ancestors ?? this.lineage(t.ppid, t.parentComm),
        entered,
        stdio: Object.freeze([...r.stdio]),
        exeWritten: false,
        exeInImage: true,
        name: '',
      };
      entry.name = programName(entry.exe, entry.args);
      this.entries.set(t.tgid, entry);
    } else {
      entry = this.entries.get(t.tgid) ?? this.fromParent(t.tgid, t.ppid, t.comm) ?? this.fromProc(t.tgid, t.ppid, t.parentComm, t.comm);
      if (r.kind === 'fork') {
        const ancestors = Object.freeze([t.comm, ...entry.ancestors].slice(0, MAX_ANCESTORS));
        this.entries.set(r.childPid, { ...entry, comm: t.comm, ancestors });
      }
      // An exit (of the last thread) keeps the entry until the sweep finds the pid gone:
      // records of the process still in flight (a socket's TCP close after it) find it,
      // rather than its parent's identity or /proc's. A reused pid's fork record replaces it.
    }
    return {
      pid: t.tgid,
      nsPid: t.nsPid,
      ppid: t.ppid,
      parent: t.parentComm,
      comm: t.comm,
      exe: entry.exe,
      args: entry.args,
      argsTruncated: entry.argsTruncated,
      uid: t.uid,
      gid: t.gid,
      caps: capabilityNames(t.capEffective),
      containerSetup: t.containerSetup,
      ancestors: entry.ancestors,
      entered: entry.entered,
      stdio: entry.stdio,
      exeWritten: entry.exeWritten,
      exeInImage: entry.exeInImage,
      parentExe: this.entries.get(t.ppid)?.exe ?? '',
      name: entry.name,
    };
  }

  /** Records where a process's executable came from (decided once per exec, from the container's layers). */
  markExeOrigin(pid: number, written: boolean, inImage: boolean): void {
    const e = this.entries.get(pid);
    if (e) {
      e.exeWritten = written;
      e.exeInImage = inImage;
    }
  }

  /** The ancestors of a process whose parent is ppid, as far as the table knows them. */
  private lineage(ppid: number, parentComm: string): readonly string[] {
    const parent = this.entries.get(ppid);
    return Object.freeze([parentComm, ...(parent?.ancestors ?? [])].slice(0, MAX_ANCESTORS));
  }

  /**
   * Drops entries of processes that no longer exist. Exit records normally remove them,
   * but an exit record lost in a full ring buffer would leave its entry for ever. An entry
   * goes only when /proc has lacked its pid at two sweeps in a row, so records still
   * queued for a process that just exited find it. Returns how many were dropped.
   */
  sweep(procRoot = '/proc'): number {
    const stillGone = new Set<number>();
    let dropped = 0;
    for (const pid of this.entries.keys()) {
      if (existsSync(`${procRoot}/${pid}`)) continue;
      if (this.gone.has(pid)) {
        this.entries.delete(pid);
        dropped++;
      } else {
        stillGone.add(pid);
      }
    }
    this.gone = stillGone;
    return dropped;
  }

  /**
   * A process the table has not seen whose parent it knows: the kernel reported the
   * parent, so it would have reported this child's fork too, and its record was lost (a
   * full ring buffer, which a container can cause). Until it execs (an exec record
   * names its program) it runs its parent's program: that is its identity. /proc is not
   * asked: what it says of a live process (cmdline can be rewritten by the process) or of
   * a pid that was reused is the attacker's to choose.
   */
  private fromParent(pid: number, ppid: number, comm: string): ProcessEntry | undefined {
    const parent = this.entries.get(ppid);
    if (!parent) return undefined;
    const ancestors = Object.freeze([parent.comm, ...parent.ancestors].slice(0, MAX_ANCESTORS));
    const entry: ProcessEntry = { ...parent, comm, ancestors };
    this.entries.set(pid, entry);
    return entry;
  }

  /** A process the table has not seen, nor its parent (it started before the agent): ask /proc once. */
  private fromProc(pid: number, ppid: number, parentComm: string, comm: string): ProcessEntry {
    const entry: ProcessEntry = { exe: '', args: [], argsTruncated: false, comm, ancestors: this.lineage(ppid, parentComm), entered: false, stdio: NONE, exeWritten: false, exeInImage: true, name: comm };
    try {
      entry.args = Object.freeze(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1));
      entry.exe = readlinkSync(`/proc/${pid}/exe`);
      entry.name = programName(entry.exe, entry.args);
    } catch {
      // gone already: the event still carries comm and pids
    }
    this.entries.set(pid, entry);
    return entry;
  }
}
