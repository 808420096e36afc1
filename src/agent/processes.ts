// The agent's table of container processes, kept from exec/fork/exit records, so
// every event can name the executable and arguments of the process that caused it,
// including processes that forked without exec and ones that ran before the agent.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import type { RawRecord, ProcessRef } from '../events/index.js';
import { capabilityNames } from '../events/index.js';

interface ProcessEntry { exe: string; args: readonly string[]; argsTruncated: boolean }

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
      entry = { exe: r.exe && !r.exeTruncated ? r.exe : r.filename, args: Object.freeze(r.argv), argsTruncated: r.argvTruncated };
      this.entries.set(t.tgid, entry);
    } else {
      entry = this.entries.get(t.tgid) ?? this.fromProc(t.tgid);
      if (r.kind === 'fork') this.entries.set(r.childPid, { ...entry });
      else if (r.kind === 'exit') this.entries.delete(t.tgid);
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
    };
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

  /** A process the table has not seen (it started before the agent): ask /proc once. */
  private fromProc(pid: number): ProcessEntry {
    const entry: ProcessEntry = { exe: '', args: [], argsTruncated: false };
    try {
      entry.args = Object.freeze(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1));
      entry.exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // gone already: the event still carries comm and pids
    }
    this.entries.set(pid, entry);
    return entry;
  }
}
