// bench/overhead: the paper's Table 6 on this machine. Every row runs inside containers,
// in each mode (no monitor, vigil, vigil logging every file event, auditd), with the
// repetitions interleaved — repetition r runs every mode once, in an order that rotates —
// so that a slow spell of the machine falls on every mode alike. Timings here are noisy:
// read the ratios, measured in one run.
//
//   npx vigil bench overhead [--quick] [--repeats=N] [--rows=a,b] [--modes=a,b] [--results=DIR] [--ref=DIR]
//
// --ref=DIR adds the mode vigil-ref: the agent of another checkout (say main, before a
// change), interleaved with this one's, so a change is measured against its base in one
// run. The kernel's per-program run time (ns per call) is printed for every vigil mode:
// it is far steadier than the wall-clock rows on a busy machine.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, report, RESULTS_DIR, type Table } from '../lib/report.js';
import { enableBpfStats, programDelta, programTimes, type ProgramTime } from '../lib/bpf-stats.js';
import { ALL_MODES, MODES, MODE_DESCRIPTIONS, modeUnavailable, startMonitor, ticksToSeconds, type ModeName, type MonitorReading } from './monitors.js';
import { ROWS, type Row, type RowContext } from './rows.js';
import { chart } from './chart.js';

const here = dirname(fileURLToPath(import.meta.url));
const MICRO_SOURCE = resolve(here, '..', '..', '..', 'bench', 'overhead', 'micro.c');
const VIGIL_PROGRAMS = ['vigil_'];

export interface ModeResult {
  median: number;
  min: number;
  max: number;
  samples: number[];
  /** Cost in percent against baseline, positive when slower whatever the unit. */
  overheadPct?: number;
  /** The monitor's CPU while the row ran, in percent of one core. */
  agentCpuPct?: number;
  peakRssBytes?: number;
  events?: number;
  lost?: number;
  /** The kernel's run time of vigil's BPF programs during the row, per program. */
  programs?: Record<string, { calls: number; nsPerCall: number }>;
}

export interface RowResult {
  name: string;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  paper: Row['paper'];
  skipped?: string;
  modes: Partial<Record<ModeName, ModeResult>>;
}

interface Options { quick: boolean; repeats: number; rows: Row[]; modes: ModeName[]; resultsDir: string; refDir?: string }

function parseOptions(argv: string[]): Options | string {
  const value = (key: string) => argv.find((a) => a.startsWith(`--${key}=`))?.slice(key.length + 3);
  const known = ['--quick', '--repeats=', '--rows=', '--modes=', '--results=', '--ref='];
  const unknown = argv.find((a) => !known.some((k) => (k.endsWith('=') ? a.startsWith(k) : a === k)));
  if (unknown) return `unknown option '${unknown}' (known: --quick, --repeats=N, --rows=a,b, --modes=a,b, --results=DIR, --ref=DIR)`;
  const refDir = value('ref') === undefined ? undefined : resolve(value('ref')!);
  if (refDir !== undefined && !existsSync(refDir)) return `--ref: no directory ${refDir}`;
  const quick = argv.includes('--quick');
  const repeats = Number(value('repeats') ?? (quick ? 3 : 5));
  if (!Number.isInteger(repeats) || repeats < 1) return `--repeats must be a positive whole number, not '${value('repeats')}'`;
  const rowNames = value('rows')?.split(',');
  const rows = rowNames ? rowNames.map((n) => ROWS.find((r) => r.name === n)) : ROWS;
  const badRow = rowNames?.find((n) => !ROWS.some((r) => r.name === n));
  if (badRow) return `unknown row '${badRow}' (known: ${ROWS.map((r) => r.name).join(', ')})`;
  const modeNames = value('modes')?.split(',') ?? [...MODES, ...(refDir ? ['vigil-ref'] : [])];
  const badMode = modeNames.find((m) => !(ALL_MODES as readonly string[]).includes(m));
  if (badMode) return `unknown mode '${badMode}' (known: ${ALL_MODES.join(', ')})`;
  const modes = modeNames as ModeName[];
  if (modes.includes('vigil-ref') && !refDir) return 'mode vigil-ref needs --ref=DIR (a vigil checkout with dist/ and bpf/.output built)';
  if (!modes.includes('baseline')) modes.unshift('baseline'); // every overhead is against it
  return { quick, repeats, rows: rows as Row[], modes, resultsDir: resolve(value('results') ?? RESULTS_DIR), ...(refDir ? { refDir } : {}) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
  else process.stderr.write(`${text}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  if (typeof opts === 'string') {
    process.stderr.write(`vigil bench overhead: ${opts}\n`);
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'vigil-overhead-'));
  try {
    execFileSync('cc', ['-O2', '-static', '-pthread', '-o', join(work, 'micro'), MICRO_SOURCE]);
    const ctx: RowContext = { microDir: work, quick: opts.quick, tag: `vigil-overhead-${process.pid}` };
    const { rows, skippedModes } = await measure(opts, ctx);
    write(opts, rows, skippedModes);
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface Sample { value: number; cpuS: number; wallS: number; events: number; lost: number; programs?: Map<string, ProgramTime> }

async function measure(opts: Options, ctx: RowContext): Promise<{ rows: RowResult[]; skippedModes: Record<string, string> }> {
  const skippedModes = new Map<ModeName, string>();
  for (const m of opts.modes) {
    const why = modeUnavailable(m, opts.refDir);
    if (why) skippedModes.set(m, why);
  }
  for (const [m, why] of skippedModes) process.stderr.write(`mode ${m} skipped: ${why}\n`);
  const modes = opts.modes.filter((m) => !skippedModes.has(m));
  const rows = opts.rows.map((row) => ({ row, skipped: row.unavailable(ctx) }));
  for (const r of rows) if (r.skipped) process.stderr.write(`row ${r.row.name} skipped: ${r.skipped}\n`);
  const runnable = rows.filter((r) => !r.skipped).map((r) => r.row);
  const samples = new Map<string, Map<ModeName, Sample[]>>(runnable.map((r) => [r.name, new Map(modes.map((m) => [m, []]))]));
  const peakRss = new Map<ModeName, number>();

  for (let rep = 0; rep < opts.repeats; rep++) {
    // Rotate the order of the modes each repetition.
    const order = modes.map((_, i) => modes[(i + rep) % modes.length] as ModeName);
    for (const mode of order) {
      progress(`[${rep + 1}/${opts.repeats}] ${mode}: starting`);
      const monitor = await startMonitor(mode, opts.refDir);
      // Interrupted, the benchmark still takes its monitor down: an audit daemon left
      // behind would keep its rules on every process of the host.
      const interrupted = () => void monitor.stop().finally(() => process.exit(130));
      process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
      const restoreStats = mode.startsWith('vigil') ? enableBpfStats() : undefined;
      try {
        let before: MonitorReading = await monitor.read();
        for (const row of runnable) {
          if (rep >= (row.maxRepeats ?? Infinity)) continue;
          progress(`[${rep + 1}/${opts.repeats}] ${mode}: ${row.label}`);
          // This agent's programs only: other agents on the machine load the same names.
          const programsBefore = restoreStats ? programTimes(VIGIL_PROGRAMS, monitor.pid) : undefined;
          const t0 = process.hrtime.bigint();
          const value = await row.measure(ctx);
          const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
          const programs = programsBefore ? programDelta(programsBefore, programTimes(VIGIL_PROGRAMS, monitor.pid)) : undefined;
          const after = await monitor.read();
          samples.get(row.name)!.get(mode)!.push({
            value, wallS, programs,
            cpuS: ticksToSeconds(after.cpuTicks - before.cpuTicks),
            events: after.events - before.events,
            lost: after.lost - before.lost,
          });
          before = after;
        }
      } finally {
        restoreStats?.();
        peakRss.set(mode, Math.max(peakRss.get(mode) ?? 0, monitor.peakRssBytes()));
        process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
        await monitor.stop();
      }
    }
  }
  progress('done');
  if (process.stderr.isTTY) process.stderr.write('\n');

  const results = rows.map(({ row, skipped }): RowResult => {
    const base: RowResult = { name: row.name, label: row.label, unit: row.unit, higherIsBetter: row.higherIsBetter, paper: row.paper, modes: {} };
    if (skipped) return { ...base, skipped };
    const byMode = samples.get(row.name)!;
    const baseline = median(byMode.get('baseline')!.map((s) => s.value));
    for (const mode of modes) {
      const ss = byMode.get(mode)!;
      const values = ss.map((s) => s.value);
      const med = median(values);
      const result: ModeResult = { median: med, min: Math.min(...values), max: Math.max(...values), samples: values };
      if (mode !== 'baseline') {
        result.overheadPct = overheadPct(baseline, med, row.higherIsBetter);
        result.agentCpuPct = (ss.reduce((n, s) => n + s.cpuS, 0) / ss.reduce((n, s) => n + s.wallS, 0)) * 100;
        result.peakRssBytes = peakRss.get(mode) ?? 0;
        result.events = ss.reduce((n, s) => n + s.events, 0);
        result.lost = ss.reduce((n, s) => n + s.lost, 0);
        if (mode.startsWith('vigil')) result.programs = programSummary(ss);
      }
      base.modes[mode] = result;
    }
    return base;
  });
  return { rows: results, skippedModes: Object.fromEntries(skippedModes) };
}

/** Cost in percent: positive when the mode is slower than baseline, whatever the unit. */
export function overheadPct(baseline: number, value: number, higherIsBetter: boolean): number {
  return higherIsBetter ? ((baseline - value) / baseline) * 100 : ((value - baseline) / baseline) * 100;
}

function programSummary(ss: Sample[]): Record<string, { calls: number; nsPerCall: number }> {
  const total = new Map<string, ProgramTime>();
  for (const s of ss) for (const [name, t] of s.programs ?? []) {
    const acc = total.get(name) ?? { calls: 0, ns: 0 };
    total.set(name, { calls: acc.calls + t.calls, ns: acc.ns + t.ns });
  }
  return Object.fromEntries([...total].filter(([, t]) => t.calls > 0).map(([name, t]) => [name, { calls: t.calls, nsPerCall: t.ns / t.calls }]));
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined || !Number.isFinite(n) ? '–' : Math.abs(n) >= 1000 ? n.toFixed(0) : n.toFixed(digits));
const pct = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : `${n >= 0 ? '+' : ''}${n.toFixed(2)}%`);

/** The paper's layout: one line per row, the paper's control and scheme beside ours, cost in percent. */
export function markdown(rows: RowResult[], modes: ModeName[], date: string): string {
  const monitored = modes.filter((m) => m !== 'baseline');
  const head = ['Test', 'Unit', 'Paper control', 'Paper scheme', 'Paper cost', 'baseline', ...monitored.flatMap((m) => [m, `${m} cost`, `${m} CPU`])];
  const lines = [`Overhead on ${date} (median of repetitions, min–max in brackets; cost: positive = slower than baseline)`, '',
    `| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.label} | ${r.unit} | ${fmt(r.paper.control)} | ${fmt(r.paper.scheme)} | ${pct(r.paper.overheadPct)} | skipped: ${r.skipped} |${' |'.repeat(monitored.length * 3)}`);
      continue;
    }
    const cell = (m: ModeName) => {
      const x = r.modes[m];
      return x ? `${fmt(x.median)} (${fmt(x.min)}–${fmt(x.max)})` : '–';
    };
    lines.push(`| ${[r.label, r.unit, fmt(r.paper.control), fmt(r.paper.scheme), pct(r.paper.overheadPct), cell('baseline'),
      ...monitored.flatMap((m) => [cell(m), pct(r.modes[m]?.overheadPct), r.modes[m] ? `${fmt(r.modes[m]!.agentCpuPct, 1)}%` : '–'])].join(' | ')} |`);
  }
  lines.push('', ...modes.map((m) => `- ${m}: ${MODE_DESCRIPTIONS[m]}`));
  return lines.join('\n') + '\n';
}

function write(opts: Options, rows: RowResult[], skippedModes: Record<string, string>): void {
  const date = new Date().toISOString();
  const modes = opts.modes.filter((m) => rows.some((r) => r.modes[m]));
  const md = markdown(rows, modes, date);
  mkdirSync(opts.resultsDir, { recursive: true });
  writeFileSync(join(opts.resultsDir, 'overhead.md'), md);
  writeFileSync(join(opts.resultsDir, 'overhead.svg'), chart(rows, modes.filter((m) => m !== 'baseline')));
  const monitored = modes.filter((m) => m !== 'baseline');
  const detail: Table = {
    title: 'Monitor work per row (summed over repetitions)',
    columns: ['row', 'mode', 'events', 'lost', 'CPU % of a core', 'peak RSS MiB'],
    rows: rows.filter((r) => !r.skipped).flatMap((r) => monitored.filter((m) => r.modes[m]).map((m) => {
      const x = r.modes[m]!;
      return [r.name, m, x.events ?? 0, x.lost ?? 0, Number(fmt(x.agentCpuPct, 1)), Number(((x.peakRssBytes ?? 0) / 2 ** 20).toFixed(1))];
    })),
  };
  const programs: Table = {
    title: "vigil's BPF programs, the kernel's run time per call (kernel.bpf_stats_enabled; summed over repetitions)",
    columns: ['row', 'mode', 'program', 'calls', 'calls per event', 'ns per call'],
    rows: rows.filter((r) => !r.skipped).flatMap((r) => monitored.filter((m) => r.modes[m]?.programs).flatMap((m) => {
      const x = r.modes[m]!;
      const events = x.events ?? 0;
      return Object.entries(x.programs!).filter(([, t]) => t.calls >= 10).map(([name, t]) =>
        [r.name, m, name, t.calls, events > 0 ? Number((t.calls / events).toFixed(2)) : '–', Math.round(t.nsPerCall)]);
    })),
  };
  process.stdout.write(md + '\n');
  report('overhead', [detail, programs], { machine: machineInfo(), date, quick: opts.quick, repeats: opts.repeats, modeDescriptions: MODE_DESCRIPTIONS, skippedModes, rows }, opts.resultsDir);
  process.stdout.write(`wrote ${join(opts.resultsDir, 'overhead.md')} and ${join(opts.resultsDir, 'overhead.svg')}\n`);
}
