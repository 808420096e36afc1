// The overhead harness itself (bench/overhead), on one tiny row in every mode: the
// results it writes have the documented structure. No timing is asserted: speed is the
// benchmark's business, not a test's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVigil } from '../helpers/agent-process.js';
import { missingForContainerTests } from '../helpers/host.js';
import { MODES } from '../../bench/overhead/monitors.js';
import { overheadPct } from '../../bench/overhead/main.js';

const skip = missingForContainerTests() ?? (existsSync('/usr/sbin/auditd') ? undefined : 'auditd is not installed (scripts/bootstrap.sh installs it)');
if (skip) console.log(`# skipping the overhead harness test: ${skip}`);

interface ModeResult { median: number; min: number; max: number; samples: number[]; overheadPct?: number; agentCpuPct?: number; lost?: number; events?: number; peakRssBytes?: number }
interface RowResult { name: string; unit: string; higherIsBetter: boolean; paper: { control: number; scheme: number; overheadPct: number }; skipped?: string; modes: Record<string, ModeResult> }

test('overheadPct is the cost: positive when the mode is slower, for times and for rates', () => {
  assert.equal(overheadPct(100, 110, false), 10);   // µs per event: more is slower
  assert.equal(overheadPct(200, 150, true), 25);    // requests/s: fewer is slower
  assert.equal(overheadPct(200, 220, true), -10);
});

test('bench overhead on one tiny row writes the table, the JSON with every mode, and the chart', { skip, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-overhead-test-'));
  const r = await runVigil(['bench', 'overhead', '--quick', '--repeats=2', '--rows=process-creation,build', `--results=${dir}`], 280_000);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(dir, 'overhead.json'), 'utf8')) as { machine: Record<string, unknown>; date: string; rows: RowResult[] };
  assert.ok(json.machine['kernel'], 'the machine is described');
  assert.ok(!Number.isNaN(Date.parse(json.date)));
  assert.deepEqual(json.rows.map((x) => x.name), ['process-creation', 'build']);
  const [row, build] = json.rows as [RowResult, RowResult];
  assert.match(build.skipped ?? '', /--quick/, 'the build row is skipped by --quick, with the reason');
  assert.equal(row.higherIsBetter, false);
  assert.deepEqual(row.paper, { control: 26.44, scheme: 28.81, overheadPct: 8.96 });
  assert.deepEqual(Object.keys(row.modes).sort(), [...MODES].sort(), 'every mode measured');
  for (const mode of MODES) {
    const m = row.modes[mode]!;
    assert.equal(m.samples.length, 2, `${mode}: one sample per repetition`);
    assert.ok(m.min <= m.median && m.median <= m.max && m.min > 0, `${mode}: ${JSON.stringify(m)}`);
    if (mode === 'baseline') continue;
    assert.equal(typeof m.overheadPct, 'number');
    assert.equal(m.overheadPct, overheadPct(row.modes['baseline']!.median, m.median, false));
    assert.ok((m.agentCpuPct ?? -1) >= 0 && (m.peakRssBytes ?? 0) > 0, `${mode}: the monitor's CPU and memory are measured`);
    assert.ok((m.events ?? 0) > 0, `${mode}: the monitor wrote events for the row's processes`);
    assert.equal(typeof m.lost, 'number');
  }
  // vigil sees every fork of the row: 3,000 per repetition, each written as an event.
  assert.ok((row.modes['vigil']!.events ?? 0) >= 2 * 3000, `vigil events: ${row.modes['vigil']!.events}`);
  const md = readFileSync(join(dir, 'overhead.md'), 'utf8');
  assert.match(md, /^\| Test \| Unit \| Paper control \| Paper scheme \| Paper cost \| baseline \| vigil \|/m);
  assert.match(md, /^\| Process creation \| µs\/process \| 26\.44 \| 28\.81 \| \+8\.96% \|/m);
  assert.match(md, /^\| Kernel compile \| s \|.*skipped: skipped by --quick/m);
  const svg = readFileSync(join(dir, 'overhead.svg'), 'utf8');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  for (const mode of ['vigil', 'vigil-all', 'auditd']) assert.ok(svg.includes(`Process creation, ${mode}:`), `the chart has a bar for ${mode}`);
});

test('bench overhead refuses unknown rows, modes and options with the known ones', async () => {
  for (const [arg, re] of [['--rows=nope', /unknown row 'nope' \(known: apache, build, file-creation/], ['--modes=vigil,xyz', /unknown mode 'xyz'/], ['--fast', /unknown option '--fast'/], ['--repeats=0', /--repeats must be a positive/]] as const) {
    const r = await runVigil(['bench', 'overhead', arg]);
    assert.equal(r.code, 2, arg);
    assert.match(r.stderr, re);
  }
});
