// bench/policy: what the policy costs.
//  - condition evaluations/s of the default rule set over the recorded event mix
//    (bench/policy/mix.jsonl.gz; each rule on the events of its kinds and pinned system
//    calls, as judge() offers them), interpreter (cel-js, on a prebuilt BigInt
//    activation) against the closures of src/policy/compile.ts, and the price of
//    building that activation;
//  - µs per event of PolicySet.judge() over the mix, interpreter against compiled;
//  - the agent's CPU while a container opens a watched file ~50,000 times a second,
//    with the default policy and with --no-default-policy (events written, records lost,
//    CPU % of a core and CPU µs per event, from /proc/PID/stat).
// The machine may be busy: every figure is the median of several rounds, with its spread.
// Options: --rounds=N (judge and evaluation rounds, default 7), --agent-runs=N (per
// policy, default 3), --rate=EVENTS_PER_S[,...] (default 50000), --seconds=S (default 3),
// --no-agent (skip the agent runs), --record (record the mix again first; needs Docker).
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gunzipSync } from 'node:zlib';
import { report, type Table } from '../lib/report.js';
import type { ContainerRef, VigilEvent } from '../../src/events/index.js';
import { loadPolicies, type PolicySet } from '../../src/policy/index.js';
import { activationOf, containerView } from '../../src/policy/activation.js';
import { closureOptions } from '../../src/policy/compile.js';
import { startAgent } from '../../test/helpers/agent-process.js';
import { TEST_IMAGES, uniqueName } from '../../test/helpers/host.js';
import { recordMix } from './record.js';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'policy');
const MIX = join(here, 'mix.jsonl.gz');
const LOOP_SOURCE = join(here, 'rate-loop.c');
/** The agent's main-thread cost per event without a policy (decode 1.9, enrichment 0.9, JSON render 3.4 µs). */
const AGENT_US_PER_EVENT = 6.2;

function option(argv: string[], name: string, fallback: number): number {
  const v = argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  return v === undefined ? fallback : Number(v);
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] as number, min: s[0] as number, max: s[s.length - 1] as number };
}

const spread = (s: { min: number; max: number }, digits = 2) => `${s.min.toFixed(digits)}–${s.max.toFixed(digits)}`;

/** The mix, its container refs shared and frozen as the agent's resolver hands them out (so per-container caches work as in the agent). */
function loadMix(): VigilEvent[] {
  const refs = new Map<string, ContainerRef>();
  return gunzipSync(readFileSync(MIX)).toString('utf8').split('\n').filter(Boolean).map((l) => {
    const e = JSON.parse(l) as VigilEvent;
    let ref = refs.get(e.container.id);
    if (!ref) refs.set(e.container.id, (ref = Object.freeze({ ...e.container })));
    e.container = ref;
    return e;
  });
}

function buildSet(compiled: boolean): PolicySet {
  closureOptions.enabled = compiled;
  try {
    return loadPolicies([]).set;
  } finally {
    closureOptions.enabled = true;
  }
}

const nowNs = () => process.hrtime.bigint();

// A collection before each timed round, outside it: the interpreter's garbage would
// otherwise be collected (by the collector's threads, whose CPU counts) during the next round.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** CPU time of this process (user + system, every thread: the collector's work counts), in ns. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * ns of CPU per call of fn over `items`, repeated until at least `minMs` of CPU passed; one
 * figure per round. CPU time, not wall time: on a shared machine the wall clock also
 * counts the time other processes had the core.
 */
function time<T>(items: readonly T[], fn: (x: T) => unknown, rounds: number, minMs = 150): number[] {
  // Warm-up: let the JIT compile and optimize everything it will (at least 3 passes, 300 ms of CPU).
  const w0 = cpuNs();
  for (let w = 0; w < 3 || cpuNs() - w0 < 300e6; w++) for (const x of items) fn(x);
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let calls = 0;
    collect();
    const t0 = cpuNs();
    let t = t0;
    while (t - t0 < minMs * 1e6) {
      for (const x of items) fn(x);
      calls += items.length;
      t = cpuNs();
    }
    out.push((t - t0) / calls);
  }
  return out;
}

interface Evaluation { evaluate: () => boolean }

/** Every (rule, event) pair judge() evaluates a condition for: the rule's kinds and pinned system calls. */
function evaluationPairs(set: PolicySet, events: readonly VigilEvent[]): Array<{ rule: string; event: VigilEvent }> {
  const pairs: Array<{ rule: string; event: VigilEvent }> = [];
  for (const info of set.list()) {
    if (!info.enabled) continue;
    for (const e of events) {
      if (info.kinds && !info.kinds.includes(e.kind)) continue;
      if (info.syscalls && !info.syscalls.includes(e.syscall)) continue;
      pairs.push({ rule: info.name, event: e });
    }
  }
  return pairs;
}

function conditionBench(events: readonly VigilEvent[], rounds: number) {
  const compiledSet = buildSet(true);
  const interpretedSet = buildSet(false);
  const pairs = evaluationPairs(compiledSet, events);
  const byRule = (set: PolicySet) => new Map(set.conditions().filter((c) => c.what === 'condition').map((c) => [c.rule, c.condition]));
  const compiledConds = byRule(compiledSet);
  const interpretedConds = byRule(interpretedSet);
  const views = new Map(events.map((e) => [e, containerView(e.container, undefined)]));
  const activations = new Map(events.map((e) => [e, activationOf(e, views.get(e) as Record<string, unknown>)]));
  const compiledEvals: Evaluation[] = pairs.map(({ rule, event }) => {
    const c = compiledConds.get(rule)!;
    const view = views.get(event)!;
    return { evaluate: () => c.evaluateEvent(event, view) };
  });
  const interpretedEvals: Evaluation[] = pairs.map(({ rule, event }) => {
    const c = interpretedConds.get(rule)!;
    const act = activations.get(event)!;
    return { evaluate: () => c.evaluate(act) };
  });
  const compiledNs = time(compiledEvals, (x) => x.evaluate(), rounds);
  const interpretedNs = time(interpretedEvals, (x) => x.evaluate(), rounds);
  const activationNs = time(events, (e) => activationOf(e, views.get(e) as Record<string, unknown>), rounds);
  // Per rule, compiled and interpreted (one round each, for the JSON).
  const perRule: Record<string, { evaluations: number; compiledPerS: number; interpretedPerS: number }> = {};
  for (const rule of compiledConds.keys()) {
    const idx = pairs.map((p, i) => (p.rule === rule ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0) continue;
    const c = stats(time(idx.map((i) => compiledEvals[i] as Evaluation), (x) => x.evaluate(), 3, 30)).median;
    const it = stats(time(idx.map((i) => interpretedEvals[i] as Evaluation), (x) => x.evaluate(), 3, 30)).median;
    perRule[rule] = { evaluations: idx.length, compiledPerS: 1e9 / c, interpretedPerS: 1e9 / it };
  }
  return { pairs: pairs.length, perEvent: pairs.length / events.length, compiledNs, interpretedNs, activationNs, perRule };
}

function judgeBench(events: readonly VigilEvent[], rounds: number) {
  const compiled = buildSet(true);
  const interpreted = buildSet(false);
  const none = loadPolicies([], { defaults: false }).set;
  // Interleaved rounds, so a busy spell of the machine hits all three alike.
  const c: number[] = [];
  const i: number[] = [];
  const n: number[] = [];
  for (let r = 0; r < rounds; r++) {
    c.push(...time(events, (e) => compiled.judge(e), 1));
    i.push(...time(events, (e) => interpreted.judge(e), 1));
    n.push(...time(events, (e) => none.judge(e), 1));
  }
  const insecure = events.filter((e) => compiled.judge(e).level === 'INSECURE').length;
  return { compiledNs: c, interpretedNs: i, emptyNs: n, insecure };
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Counts, without parsing every line, the container's opens of the path and the records lost. */
async function countLog(path: string, containerId: string, watched: string): Promise<{ opens: number; lost: number; lines: number }> {
  let opens = 0;
  let lost = 0;
  let lines = 0;
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  const pathText = `"path":"${watched}"`;
  for await (const line of rl) {
    lines++;
    if (line.includes('"kind":"lost"')) lost += Number((JSON.parse(line) as VigilEvent).args['lost'] ?? 0);
    else if (line.includes(containerId) && line.includes('"syscall":"openat"') && line.includes(pathText)) opens++;
  }
  return { opens, lost, lines };
}

interface AgentRun { policy: string; attempted: number; opens: number; lost: number; loadS: number; eventsPerS: number; idleCpuPercent: number; cpuS: number; cpuPercent: number; cpuUsPerEvent: number; stopLine: string }

async function agentRun(policyArgs: string[], label: string, loop: string, rate: number, seconds: number): Promise<AgentRun> {
  const agent = await startAgent(policyArgs);
  const pid = agent.child.pid as number;
  const clk = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  await new Promise((r) => setTimeout(r, 1500)); // the agent's start-up work (container listing) done
  const idle0 = cpuTicks(pid);
  await new Promise((r) => setTimeout(r, 1000));
  const idleCpuPercent = ((cpuTicks(pid) - idle0) / clk) * 100;
  const name = uniqueName('vigil-bench-policy');
  const watched = '/etc/hostname';
  let goTicks = 0;
  let goAt = 0n;
  let doneAt = 0n;
  let id = '';
  const out = await new Promise<string>((resolveRun, reject) => {
    const child = spawn('docker', ['run', '--rm', '--pull', 'never', '--name', name, '-v', `${loop}:/loop:ro`, TEST_IMAGES.busybox, '/loop', watched, String(rate), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      text += d;
      if (!goAt && text.includes('go\n')) {
        goTicks = cpuTicks(pid);
        goAt = nowNs();
        id = execFileSync('docker', ['inspect', '-f', '{{.Id}}', name], { encoding: 'utf8' }).trim();
      }
      if (!doneAt && text.includes('done')) doneAt = nowNs();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolveRun(text) : reject(new Error(`load container exited ${code}: ${err}`))));
  });
  // The agent may still be draining what the load queued: its CPU counts until it is idle again.
  let last = cpuTicks(pid);
  for (let waited = 0; waited < 15_000; waited += 300) {
    await new Promise((r) => setTimeout(r, 300));
    const t = cpuTicks(pid);
    if (t - last <= 1) break;
    last = t;
  }
  const cpuS = (last - goTicks) / clk;
  // Stopped by hand: agent.stop() would parse the whole log (hundreds of MB) into memory.
  agent.child.ref();
  const keepAlive = setInterval(() => {}, 1000);
  const exited = new Promise((r) => (agent.child.exitCode !== null ? r(null) : agent.child.once('exit', r)));
  agent.child.kill('SIGTERM');
  await exited;
  clearInterval(keepAlive);
  const stopLine = agent.stderr().split('\n').find((l) => l.includes('stopped:')) ?? '';
  const m = /done (\d+) ([\d.]+)/.exec(out);
  const loadS = m ? Number(m[2]) : Number(doneAt - goAt) / 1e9;
  const counted = await countLog(agent.logPath, id, watched);
  rmSync(dirname(agent.logPath), { recursive: true, force: true });
  return {
    policy: label, attempted: m ? Number(m[1]) : NaN, opens: counted.opens, lost: counted.lost, loadS, eventsPerS: counted.opens / loadS, idleCpuPercent,
    cpuS, cpuPercent: (cpuS / loadS) * 100, cpuUsPerEvent: counted.opens > 0 ? (cpuS / counted.opens) * 1e6 : NaN, stopLine,
  };
}

export async function main(argv: string[]): Promise<number> {
  const rounds = option(argv, 'rounds', 7);
  const agentRuns = option(argv, 'agent-runs', 3);
  const rates = (argv.find((a) => a.startsWith('--rate='))?.split('=')[1] ?? '50000').split(',').map(Number);
  const seconds = option(argv, 'seconds', 3);
  if (argv.includes('--record')) {
    const r = await recordMix(MIX);
    process.stdout.write(`recorded ${r.events} events into ${MIX} (${r.bytes} bytes)\n`);
  }
  const events = loadMix();
  const kinds: Record<string, number> = {};
  for (const e of events) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;

  const cond = conditionBench(events, rounds);
  const judge = judgeBench(events, rounds);
  const ci = stats(cond.interpretedNs);
  const cc = stats(cond.compiledNs);
  const ca = stats(cond.activationNs);
  const ji = stats(judge.interpretedNs.map((x) => x / 1000));
  const jc = stats(judge.compiledNs.map((x) => x / 1000));
  const je = stats(judge.emptyNs.map((x) => x / 1000));
  const perS = (s: { median: number; min: number; max: number }) => ({ median: 1e9 / s.median, min: 1e9 / s.max, max: 1e9 / s.min });

  const tables: Table[] = [
    {
      title: `Condition evaluations, default rules over the recorded mix (${events.length} events, ${cond.pairs} evaluations: ${cond.perEvent.toFixed(2)} per event; median of ${rounds} rounds)`,
      columns: ['evaluator', 'evaluations/s', 'spread (evaluations/s)', 'ns per evaluation'],
      rows: [
        ['cel-js interpreter (activation prebuilt)', perS(ci).median, `${(perS(ci).min / 1e6).toFixed(2)}M–${(perS(ci).max / 1e6).toFixed(2)}M`, ci.median],
        ['compiled closures (compile.ts)', perS(cc).median, `${(perS(cc).min / 1e6).toFixed(2)}M–${(perS(cc).max / 1e6).toFixed(2)}M`, cc.median],
        ['building the BigInt activation (per event)', perS(ca).median, `${(perS(ca).min / 1e6).toFixed(2)}M–${(perS(ca).max / 1e6).toFixed(2)}M`, ca.median],
      ],
    },
    {
      title: `PolicySet.judge() per event over the mix (median of ${rounds} interleaved rounds; target < 20% of the agent's ~${AGENT_US_PER_EVENT} µs per event, i.e. < ${(AGENT_US_PER_EVENT * 0.2).toFixed(2)} µs)`,
      columns: ['policy', 'µs per event', 'spread (µs)', 'events/s', '% of the agent per-event cost'],
      rows: [
        ['default rules, interpreter', ji.median, spread(ji, 3), 1e6 / ji.median, (ji.median / AGENT_US_PER_EVENT) * 100],
        ['default rules, compiled', jc.median, spread(jc, 3), 1e6 / jc.median, (jc.median / AGENT_US_PER_EVENT) * 100],
        ['no rules (--no-default-policy)', je.median, spread(je, 3), 1e6 / je.median, (je.median / AGENT_US_PER_EVENT) * 100],
      ],
    },
  ];

  const runs: Array<AgentRun & { rate: number }> = [];
  const summary: Record<string, unknown> = {};
  if (!argv.includes('--no-agent')) {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-policy-'));
    const loop = join(dir, 'rate-loop');
    execFileSync('cc', ['-O2', '-static', '-o', loop, LOOP_SOURCE]);
    for (const rate of rates) {
      // Alternating, so a busy spell of the machine hits both alike.
      const these: Array<AgentRun & { rate: number }> = [];
      for (let r = 0; r < agentRuns; r++) {
        these.push({ ...(await agentRun([], 'default policy', loop, rate, seconds)), rate });
        these.push({ ...(await agentRun(['--no-default-policy'], '--no-default-policy', loop, rate, seconds)), rate });
      }
      runs.push(...these);
      const pick = (label: string) => these.filter((r) => r.policy === label);
      const withPolicy = pick('default policy');
      const without = pick('--no-default-policy');
      const cpuP = stats(withPolicy.map((r) => r.cpuUsPerEvent));
      const cpuN = stats(without.map((r) => r.cpuUsPerEvent));
      const pctP = stats(withPolicy.map((r) => r.cpuPercent));
      const pctN = stats(without.map((r) => r.cpuPercent));
      tables.push({
        title: `The agent under a container opening /etc/hostname ${rate * seconds} times at up to ${rate}/s (agent CPU from /proc/PID/stat, from the first open until the agent is idle again; CPU µs per event = that CPU / events written)`,
        columns: ['policy', 'run', 'opens', 'events written', 'records lost', 'load s', 'events/s', 'idle CPU %', 'agent CPU % of a core', 'agent CPU µs per event'],
        rows: these.map((r, i) => [r.policy, Math.floor(i / 2) + 1, r.attempted, r.opens, r.lost, r.loadS, r.eventsPerS, r.idleCpuPercent, r.cpuPercent, r.cpuUsPerEvent]),
      });
      tables.push({
        title: `Agent CPU at up to ${rate}/s, default policy against none (medians of the runs above; spread min–max)`,
        columns: ['measure', 'default policy', '--no-default-policy', 'ratio', 'policy share'],
        rows: [
          ['CPU µs per event', `${cpuP.median.toFixed(2)} (${spread(cpuP)})`, `${cpuN.median.toFixed(2)} (${spread(cpuN)})`, cpuP.median / cpuN.median, `${(((cpuP.median - cpuN.median) / cpuN.median) * 100).toFixed(1)}%`],
          ['CPU % of a core', `${pctP.median.toFixed(1)} (${spread(pctP, 1)})`, `${pctN.median.toFixed(1)} (${spread(pctN, 1)})`, pctP.median / pctN.median, `${(((pctP.median - pctN.median) / pctN.median) * 100).toFixed(1)}%`],
        ],
      });
      summary[String(rate)] = { cpuUsPerEvent: { policy: cpuP, none: cpuN, ratio: cpuP.median / cpuN.median }, cpuPercent: { policy: pctP, none: pctN, ratio: pctP.median / pctN.median } };
    }
    rmSync(dir, { recursive: true, force: true });
  }

  report('policy', tables, {
    mix: { file: 'bench/policy/mix.jsonl.gz', events: events.length, kinds, insecure: judge.insecure },
    evaluations: {
      perEvent: cond.perEvent,
      interpreterPerSecond: perS(ci), compiledPerSecond: perS(cc), activationNsPerEvent: ca,
      perRule: cond.perRule,
    },
    judgeUsPerEvent: { interpreter: ji, compiled: jc, noRules: je, agentUsPerEvent: AGENT_US_PER_EVENT, targetUs: AGENT_US_PER_EVENT * 0.2, targetMet: jc.median < AGENT_US_PER_EVENT * 0.2 },
    agent: { rates, seconds, runs, summary },
  });
  return 0;
}
