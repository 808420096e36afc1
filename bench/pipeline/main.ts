// bench/pipeline: what the agent costs and what it sustains.
//  - per-iteration cost of an open()/close() loop in a host process (not in a
//    container), without and with the agent: the in-kernel host filter must keep this
//    near zero;
//  - the same loop in a container, on a path the default capture does not watch
//    (counted and filtered in the kernel) and on one it watches (every open an event);
//  - events/s through drain, decode and enrichment while the watched loop runs, and
//    the agent's CPU use (user + system, % of one core);
//  - the same watched loop with the reader woken on every record (--wakeup-bytes 0)
//    and on the default fill mark, alternated in one run: agent CPU per event and events/s.
// Timing is noisy here: the table compares ratios measured in one run.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, type Table } from '../lib/report.js';
import { measurePrograms } from '../lib/bpf-stats.js';
import { startAgent, type RunningAgent } from '../../test/helpers/agent-process.js';
import { TEST_IMAGES } from '../../test/helpers/host.js';
import { BpfSensor } from '../../src/sensor/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '..', '..', '..', 'bench', 'pipeline', 'syscall-loop.c');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

/**
 * The watched opens and the loss of one container (by name) in an agent's log, read line
 * by line: on a shared machine the log also holds every other container's records, often
 * more than one string can hold. The log's directory is removed once read.
 */
async function containerStats(logPath: string, name: string, path: string): Promise<{ events: number; lost: number; firstNs: bigint; lastNs: bigint }> {
  const out = { events: 0, lost: 0, firstNs: 0n, lastNs: 0n };
  const tag = `"name":${JSON.stringify(name)}`;
  const lines = createInterface({ input: createReadStream(logPath, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.includes(tag)) continue;
    const e = JSON.parse(line) as { kind: string; syscall: string; time: string; args: Record<string, unknown>; container: { name: string } };
    if (e.container.name !== name) continue;
    if (e.kind === 'lost') out.lost += Number(e.args['lost']);
    else if (e.syscall === 'openat' && e.args['path'] === path) {
      const t = BigInt(e.time);
      if (out.events === 0) out.firstNs = t;
      out.lastNs = t;
      out.events++;
    }
  }
  rmSync(dirname(logPath), { recursive: true, force: true });
  return out;
}

/** Stops an agent without reading its log whole (RunningAgent.stop does: too big on a shared machine). */
async function stopAgent(a: RunningAgent): Promise<void> {
  const exited = new Promise<void>((r) => {
    if (a.child.exitCode !== null || a.child.signalCode !== null) r();
    else a.child.once('exit', () => r());
  });
  a.child.ref(); // the helper unrefs its agents: keep this process alive until the agent has exited
  a.child.kill('SIGTERM');
  await exited;
}

export async function main(argv: string[]): Promise<number> {
  const iterations = Number(argv.find((a) => a.startsWith('--iterations='))?.split('=')[1] ?? 200_000);
  const repeats = Number(argv.find((a) => a.startsWith('--repeats='))?.split('=')[1] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const loop = join(dir, 'syscall-loop');
  execFileSync('cc', ['-O2', '-static', '-o', loop, source]);

  const onHost = (path: string) => median(Array.from({ length: repeats }, () => Number(execFileSync(loop, [path, String(iterations)], { encoding: 'utf8' }))));
  let runs = 0;
  const inContainer = (path: string, name = `vigil-bench-pipeline-${process.pid}-${runs++}`) => {
    const out = execFileSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, '-v', `${loop}:/loop:ro`, TEST_IMAGES.busybox,
      'sh', '-c', Array.from({ length: repeats }, () => `/loop ${path} ${iterations}`).join('; ')], { encoding: 'utf8' });
    return median(out.trim().split('\n').map(Number));
  };
  const watched = '/etc/hostname';   // under /etc/: every open is an event
  const unwatched = '/tmp/unwatched'; // counted and dropped in the kernel
  const prepare = `touch ${unwatched}`;
  execFileSync('sh', ['-c', prepare]);
  const containerUnwatched = () => {
    const out = execFileSync('docker', ['run', '--rm', '--pull', 'never', '-v', `${loop}:/loop:ro`, TEST_IMAGES.busybox,
      'sh', '-c', `${prepare}; ` + Array.from({ length: repeats }, () => `/loop ${unwatched} ${iterations}`).join('; ')], { encoding: 'utf8' });
    return median(out.trim().split('\n').map(Number));
  };

  const baseline = { host: onHost(unwatched), unwatched: containerUnwatched(), watched: inContainer(watched) };

  // The floor: empty sys_enter/sys_exit programs, the kernel's own price for syscall tracepoints.
  const floor = BpfSensor.open({ objects: ['bench_floor.bpf.o'] });
  const { result: floorHost, times: floorTimes } = measurePrograms(['vigil_floor'], () => onHost(unwatched));
  floor.close();

  const agent = await startAgent([]);
  const agentPid = agent.child.pid as number;
  // Let the agent finish starting (container listing, first metrics) before timing the host.
  await new Promise((r) => setTimeout(r, 2000));
  const { result: hostWithAgent, times: agentTimes } = measurePrograms(['vigil_sys_', 'vigil_cap', 'vigil_exec', 'vigil_fork', 'vigil_exit'], () => onHost(unwatched));
  const withAgent = { host: hostWithAgent, unwatched: containerUnwatched(), watched: 0 };
  const ticksBefore = cpuTicks(agentPid);
  const t0 = process.hrtime.bigint();
  const benchName = `vigil-bench-pipeline-${process.pid}-watched`;
  withAgent.watched = inContainer(watched, benchName);
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const ticks = cpuTicks(agentPid) - ticksBefore;
  await stopAgent(agent);
  // Only this container's opens and loss: other containers on the machine are not the benchmark's.
  const own = await containerStats(agent.logPath, benchName, watched);
  const opens = own.events;
  // The loop's own span, from the kernel times of its first and last event: the wall
  // time above also holds the container's start and stop.
  const loopS = opens > 1 ? Number(own.lastNs - own.firstNs) / 1e9 : wallS;
  const lost = own.lost;
  const clk = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const cpuPercent = (ticks / clk / wallS) * 100;

  const rows: Table['rows'] = [
    ['host process, empty syscall programs (kernel floor)', baseline.host, floorHost, floorHost / baseline.host],
    ['host process, path not watched', baseline.host, withAgent.host, withAgent.host / baseline.host],
    ['container, path not watched (counted, filtered in kernel)', baseline.unwatched, withAgent.unwatched, withAgent.unwatched / baseline.unwatched],
    ['container, watched path (every open an event)', baseline.watched, withAgent.watched, withAgent.watched / baseline.watched],
  ];
  const programRows: Table['rows'] = [...floorTimes, ...agentTimes]
    .filter(([, t]) => t.calls > 0)
    .map(([name, t]) => [name, t.calls, t.ns / t.calls]);
  const eventsPerSecond = opens / wallS;
  const eventsPerLoopSecond = opens / loopS;
  const tables: Table[] = [
    { title: `open()+close() cost, ns per iteration (median of ${repeats} x ${iterations})`, columns: ['scenario', 'nothing loaded', 'loaded', 'ratio'], rows },
    { title: 'BPF program time per call during the host loop (kernel bpf_stats; floor = empty programs)', columns: ['program', 'calls', 'ns per call'], rows: programRows },
    {
      title: 'pipeline throughput during the watched loop (wall: container start to stop; loop: first to last event)',
      columns: ['events', 'lost', 'wall s', 'events/s (wall)', 'loop s', 'events/s (loop)', 'agent CPU % of a core (wall)'],
      rows: [[opens, lost, wallS, eventsPerSecond, loopS, eventsPerLoopSecond, cpuPercent]],
    },
  ];
  // Wakeups: per record (the kernel's adaptive wakeup) against the fill mark, A B A B.
  const modes = [{ name: 'every record (--wakeup-bytes 0)', args: ['--wakeup-bytes', '0'] }, { name: 'fill mark (default 64 KiB, 20 ms timer)', args: [] as string[] }];
  const wake = modes.map(() => ({ events: 0, lost: 0, cpuS: 0, loopS: 0 }));
  for (let round = 0; round < 2; round++) {
    for (const [i, mode] of modes.entries()) {
      const a = await startAgent(mode.args);
      await new Promise((r) => setTimeout(r, 2000));
      const before = cpuTicks(a.child.pid as number);
      const name = `vigil-bench-pipeline-${process.pid}-wake-${round}-${i}`;
      inContainer(watched, name);
      const used = cpuTicks(a.child.pid as number) - before;
      await stopAgent(a);
      const w = await containerStats(a.logPath, name, watched);
      const acc = wake[i]!;
      acc.events += w.events;
      acc.lost += w.lost;
      acc.cpuS += used / clk;
      acc.loopS += w.events > 1 ? Number(w.lastNs - w.firstNs) / 1e9 : 0;
    }
  }
  const wakeRows: Table['rows'] = modes.map((m, i) => {
    const w = wake[i]!;
    return [m.name, w.events, w.lost, (w.cpuS * 1e6) / Math.max(1, w.events), w.events / Math.max(1e-9, w.loopS)];
  });
  const usPerEvent = wake.map((w) => (w.cpuS * 1e6) / Math.max(1, w.events));
  const rate = wake.map((w) => w.events / Math.max(1e-9, w.loopS));
  wakeRows.push(['ratio fill mark / every record', wake[1]!.events / Math.max(1, wake[0]!.events), '', usPerEvent[1]! / usPerEvent[0]!, rate[1]! / rate[0]!]);
  tables.push({ title: `reader wakeups during the watched loop (2 rounds each, alternated)`, columns: ['wakeup', 'events', 'lost', 'agent CPU µs/event', 'events/s (loop)'], rows: wakeRows });

  report('pipeline', tables, {
    iterations, repeats,
    costNs: { baseline, withAgent, floorHost },
    programNsPerCall: Object.fromEntries(programRows.map((r) => [String(r[0]), r[2]])),
    ratios: { hostFloor: floorHost / baseline.host, host: withAgent.host / baseline.host, containerUnwatched: withAgent.unwatched / baseline.unwatched, containerWatched: withAgent.watched / baseline.watched },
    throughput: { events: opens, lost, wallSeconds: wallS, eventsPerSecond, loopSeconds: loopS, eventsPerLoopSecond, agentCpuPercent: cpuPercent },
    wakeups: Object.fromEntries(modes.map((m, i) => [m.name, { ...wake[i], agentCpuUsPerEvent: usPerEvent[i], eventsPerLoopSecond: rate[i] }])),
  });
  return 0;
}
