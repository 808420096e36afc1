// A burst of 100,000 opens: with the default ring buffer nothing is lost; with a tiny
// one the kernel drops records and the log says exactly how many.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { startAgent } from '../helpers/agent-process.js';

const skip = missingForContainerTests();
const OPENS = 100_000;

/** Watches only /etc/hostname, so the burst's opens are the only path-filtered records. */
function configWithRing(ringBytes: number | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-loss-'));
  const path = join(dir, 'agent.yaml');
  writeFileSync(path, [
    ...(ringBytes ? [`ringBufferBytes: ${ringBytes}`] : []),
    'capture:',
    '  syscalls: [openat]',
    '  capabilities: first',
    '  paths:',
    '    watch: [/etc/hostname]',
    '    exclude: []',
    '    suffixes: []',
    '',
  ].join('\n'));
  return path;
}

async function burst(ringBytes: number | undefined): Promise<{ received: number; lost: number; lostEntries: number; lostMetric: number }> {
  const metrics = join(mkdtempSync(join(tmpdir(), 'vigil-metrics-')), 'vigil.prom');
  // No policy: its rules would widen the capture (pushdown) beyond the one watched path.
  const agent = await startAgent(['--config', configWithRing(ringBytes), '--metrics', metrics, '--no-default-policy']);
  const name = uniqueName('vigil-burst');
  let id = '';
  try {
    id = docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.bash, 'bash', '-c', `for ((i = 0; i < ${OPENS}; i++)); do : < /etc/hostname; done`);
    docker('wait', name);
  } finally {
    docker('rm', '-f', name);
  }
  await new Promise((r) => setTimeout(r, 1500)); // the lost counters are read each second
  const { code, events } = await agent.stop();
  assert.equal(code, 0, agent.stderr());
  const received = events.filter((e) => e.container.id === id && e.syscall === 'openat' && e.args['path'] === '/etc/hostname').length;
  const lostEntries = events.filter((e) => e.kind === 'lost');
  const lostEvents = lostEntries.filter((e) => e.args['record_kind'] === 'syscall');
  const lost = lostEvents.reduce((n, e) => n + Number(e.args['lost']), 0);
  // The summary counts every kind (the shell's own exit record may be lost in the burst too).
  const lostAllKinds = lostEntries.reduce((n, e) => n + Number(e.args['lost']), 0);
  const summary = /(\d+) records lost in the kernel/.exec(agent.stderr());
  assert.equal(Number(summary?.[1]), lostAllKinds, 'the summary line and the log agree on what was lost');
  // The metric keeps one series per CPU and record kind.
  const series = [...readFileSync(metrics, 'utf8').matchAll(/^vigil_records_lost_total\{cpu="(\d+)",kind="syscall"\} (\d+)$/gm)];
  const lostMetric = series.reduce((n, m) => n + Number(m[2]), 0);
  return { received, lost, lostEntries: lostEvents.length, lostMetric };
}

test('100,000 opens at the default buffer size: every one arrives, none lost', { skip, timeout: 300_000 }, async () => {
  const r = await burst(undefined);
  assert.equal(r.lost, 0);
  assert.equal(r.lostMetric, 0);
  assert.equal(r.received, OPENS);
});

test('100,000 opens through a 4 KiB buffer: received + lost = 100,000 exactly, and the loss is in the log', { skip, timeout: 300_000 }, async () => {
  const r = await burst(4096);
  assert.ok(r.lost > 0, 'a one-page ring buffer must overflow under this burst');
  assert.ok(r.lostEntries > 0);
  assert.equal(r.received + r.lost, OPENS);
  assert.equal(r.lostMetric, r.lost, 'the per-CPU metric sums to the logged loss');
});
