// The kernel's own accounting of BPF program run time (kernel.bpf_stats_enabled): the
// cost of vigil's programs per call, free of the noise of timing a whole workload.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export interface ProgramTime { calls: number; ns: number }

const KNOB = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * The ids of the BPF programs a process holds open (its /proc/PID/fdinfo entries with a
 * prog_id): how one agent's programs are told from another's of the same name, when
 * other agents run on the machine too.
 */
export function programIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids; // gone
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

/**
 * Run time and run count, summed by name, of the loaded BPF programs whose name starts
 * with one of the prefixes; only those of the process `pid` when it is given.
 */
export function programTimes(prefixes: readonly string[], pid?: number): Map<string, ProgramTime> {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as Array<{ id?: number; name?: string; run_time_ns?: number; run_cnt?: number }>;
  const own = pid === undefined ? undefined : programIdsOf(pid);
  const out = new Map<string, ProgramTime>();
  for (const p of progs) {
    if (!p.name || !prefixes.some((x) => p.name!.startsWith(x))) continue;
    if (own && !own.has(p.id ?? -1)) continue;
    const t = out.get(p.name) ?? { calls: 0, ns: 0 };
    out.set(p.name, { calls: t.calls + (p.run_cnt ?? 0), ns: t.ns + (p.run_time_ns ?? 0) });
  }
  return out;
}

/** What each program spent between two readings of programTimes. */
export function programDelta(start: Map<string, ProgramTime>, end: Map<string, ProgramTime>): Map<string, ProgramTime> {
  const delta = new Map<string, ProgramTime>();
  for (const [name, t] of end) {
    const s0 = start.get(name) ?? { calls: 0, ns: 0 };
    delta.set(name, { calls: t.calls - s0.calls, ns: t.ns - s0.ns });
  }
  return delta;
}

/**
 * Turns the statistics on for as long as the returned function is not called; calling it
 * restores the knob as it was. The statistics add their own small cost to every program
 * run, so they are on only while measuring.
 */
export function enableBpfStats(): () => void {
  const before = readFileSync(KNOB, 'utf8').trim();
  writeFileSync(KNOB, '1');
  return () => writeFileSync(KNOB, before);
}

/** Runs fn with the statistics on and returns, per program, the calls and nanoseconds spent during it. */
export function measurePrograms<T>(prefixes: readonly string[], fn: () => T): { result: T; times: Map<string, ProgramTime> } {
  const restore = enableBpfStats();
  try {
    const start = programTimes(prefixes);
    const result = fn();
    return { result, times: programDelta(start, programTimes(prefixes)) };
  } finally {
    restore();
  }
}
