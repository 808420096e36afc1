// A full disk under the log (a container's writable layer is often on the same file
// system, so a container can fill it) must not stop the output for good: the agent keeps
// trying, lines wait in memory up to a bound and past it are counted and dropped, and a
// `lost` entry saying how many and why is written once space returns; the summary and
// the metrics say so too. The log here is on a small tmpfs (48 MiB), filled and then freed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent } from '../helpers/agent-process.js';
import { docker, missingForContainerTests, missingWorkloadImages, TEST_IMAGES, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';
import { tempDir } from '../helpers/observe.js';
import { until } from '../helpers/wait.js';

const skip = missingForContainerTests() ?? missingWorkloadImages() ?? (process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : undefined);

function readLines(path: string): VigilEvent[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const out: VigilEvent[] = [];
  const lines = text.split('\n');
  lines.pop(); // after the last newline: a line the agent is still writing
  for (const line of lines) {
    out.push(JSON.parse(line) as VigilEvent); // every line whole: a short write is finished, never torn
  }
  return out;
}

/** Reads a growing JSON-lines file from where it last stopped (the helper's full log grows by tens of MiB here). */
function follower(path: string): () => VigilEvent[] {
  let offset = 0;
  let rest = '';
  return () => {
    if (!existsSync(path)) return [];
    const size = statSync(path).size;
    if (size <= offset) return [];
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    closeSync(fd);
    offset = size;
    const text = rest + buf.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    return lines.filter((l) => l !== '').map((l) => JSON.parse(l) as VigilEvent);
  };
}

test('a log on a full file system records the loss and recovers when space is freed', { skip }, async () => {
  const mnt = tempDir('vigil-full');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    console.log(`# skipped: cannot mount a tmpfs here: ${mounted.stderr}`);
    return;
  }
  const log = join(mnt, 'events.jsonl');
  const metrics = join(tempDir('vigil-full-metrics'), 'vigil.prom');
  const agent = await startAgent(['--no-default-policy', '--output', `jsonl:${log}`, '--metrics', metrics]);
  let stopped = false;
  try {
    // Fill the file system: dd stops at ENOSPC.
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    // More events than the agent keeps waiting in memory (16 MiB): 60,000 opens of a watched file.
    const name = uniqueName('vigil-full');
    const id = docker('run', '-d', '--pull', 'never', '--name', name, WORKLOAD_IMAGES.python, 'python3', '-c',
      'for i in range(60000): open("/etc/hostname").close()');
    try {
      assert.equal(docker('wait', name), '0');
    } finally {
      docker('rm', '-f', name);
    }
    await until('the agent to report the write failure', () => (agent.stderr().includes(`cannot write jsonl output ${log}`) ? true : undefined), 120_000);
    // Every event of the container has passed the agent (its own full log, on another disk).
    const helperLog = follower(agent.logPath);
    await until('the container\'s events to pass the agent', () =>
      (helperLog().some((e) => e.container.id === id && e.kind === 'exit' && e.process.nsPid === 1) ? true : undefined), 120_000);
    const before = readLines(log).length;
    rmSync(join(mnt, 'filler'));
    // Space again: the next write succeeds (backoff of at most 2 s), and the loss is told.
    const lost = await until('a lost entry in the freed log', () => readLines(log).find((e) => e.kind === 'lost' && e.args['record_kind'] === 'output'), 120_000);
    assert.equal(lost.args['reason'], 'ENOSPC');
    assert.equal(lost.args['output'], log);
    const n = Number(lost.args['lost']);
    assert.ok(n > 0, JSON.stringify(lost));
    // Output goes on after it: a later container's events reach the same file.
    const name2 = uniqueName('vigil-full-after');
    const id2 = docker('run', '-d', '--pull', 'never', '--name', name2, TEST_IMAGES.busybox, 'cat', '/etc/hostname');
    try {
      docker('wait', name2);
    } finally {
      docker('rm', '-f', name2);
    }
    await until('the later container\'s events in the freed log', () => (readLines(log).some((e) => e.container.id === id2 && e.kind === 'exec') ? true : undefined), 120_000);
    const all = readLines(log);
    assert.ok(all.length > before);
    const lostAt = all.findIndex((e) => e.kind === 'lost' && e.args['record_kind'] === 'output');
    assert.ok(all.findIndex((e) => e.container.id === id2) > lostAt, 'the loss is told where it happened, before what came after');
    const { code } = await agent.stop();
    stopped = true;
    assert.equal(code, 0, agent.stderr());
    // The summary tells the truth: the lines that did not reach the output are counted.
    const summary = /stopped: (\d+) events emitted, (\d+) output lines lost/.exec(agent.stderr());
    assert.ok(summary, agent.stderr());
    const totalLost = all.filter((e) => e.kind === 'lost' && e.args['record_kind'] === 'output').reduce((s, e) => s + Number(e.args['lost']), 0);
    assert.equal(Number(summary[2]), totalLost, 'the summary counts what the lost entries told');
    const prom = readFileSync(metrics, 'utf8');
    const m = new RegExp(`^vigil_output_lines_lost_total\\{output="jsonl:${log.replace(/[/.]/g, '\\$&')}"\\} (\\d+)$`, 'm').exec(prom);
    assert.ok(m, prom);
    assert.equal(Number(m[1]), totalLost);
  } finally {
    if (!stopped) await agent.stop();
    spawnSync('umount', ['-l', mnt]);
  }
});
