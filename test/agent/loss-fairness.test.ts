// One container's flood costs its own events, not the others': while a container floods
// chmod(2) (reported for every call: no filter drops it) faster than the agent can write,
// the kernel's per-container budget sheds the flood's excess, another container's read
// of /etc/shadow is still reported, and the loss entries name the flooding container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, readEvents, startAgent } from '../helpers/agent-process.js';
import type { VigilEvent } from '../../src/events/index.js';

const fixtureSource = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'chmod-flood.c');
const skip = missingForContainerTests() ?? (spawnSync('cc', ['--version']).status === 0 ? undefined : 'no C compiler (cc) to build the flood');

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Records the kernel shed because a container spent its budget, or lost to a full ring (every CPU, every kind), from the metrics file. */
function kernelLoss(metrics: string, what: 'over_budget' | 'lost'): number {
  if (!existsSync(metrics)) return 0;
  const re = new RegExp(`^vigil_records_${what}_total\\{[^}]*\\} (\\d+)$`, 'gm');
  return [...readFileSync(metrics, 'utf8').matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

// todo until it holds every run: in one fresh-clone CI run of three the victim's read was not in
// the log within 120 s while the flood went on (lost to a ring that was full at that moment, or
// held behind the flood; the test cannot tell yet). Issue 9.
test('a flood of chmods from one container: another container\'s cat /etc/shadow is reported, and the loss is the flooder\'s', {
  skip, timeout: 300_000,
  todo: 'flaky under load: the budget acts from 75% full, and a victim record that meets a full ring is lost (the flooder still causes some ring-full loss)',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-fair-'));
  const flood = join(dir, 'chmod-flood');
  execFileSync('cc', ['-O2', '-static', '-o', flood, fixtureSource]);
  const metrics = join(dir, 'vigil.prom');
  // The default policy and capture; the log keeps INSECURE events only (a read of
  // /etc/shadow, and lost entries: rule "records lost"), so a flood does not fill the disk.
  // /dev/null takes every event, so the capture is the full default one (alerts alone narrow it).
  // A 4 MiB ring: the flood outpaces the agent within seconds even when this busy machine
  // gives the flooder little CPU, and the quarter above the pressure mark still holds more
  // than the default burst of small records can fill at the rising cost.
  const agent = await startAgent(['--metrics', metrics, ALERTS_ONLY_LOG, '--output', 'jsonl:/dev/null', '--ring-buffer-bytes', String(4 << 20)]);
  const flooder = uniqueName('vigil-flood');
  const victim = uniqueName('vigil-victim');
  let flooderId = '';
  let victimId = '';
  try {
    flooderId = docker('run', '-d', '--pull', 'never', '--name', flooder, '-v', `${flood}:/flood:ro`, TEST_IMAGES.busybox, '/flood', '/tmp/flood');
    // The flood has the ring under pressure once the kernel sheds part of it (metrics: every 5 s).
    const pressed = await until('the kernel to shed part of the flood', () => (kernelLoss(metrics, 'over_budget') > 0 ? true : undefined), 120_000).catch(() => false);
    if (!pressed) {
      // A ring that overflowed with nothing shed means the budget did not act: a failure.
      assert.equal(kernelLoss(metrics, 'lost'), 0, 'the ring overflowed but no container\'s budget was enforced');
      await agent.stop();
      rmSync(dirname(agent.logPath), { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      t.skip('the flood never outpaced the agent here (no pressure on the ring within 120 s): nothing to share fairly');
      return;
    }
    victimId = docker('run', '-d', '--pull', 'never', '--name', victim, TEST_IMAGES.busybox, 'cat', '/etc/shadow');
    docker('wait', victim);
    // Still flooding while the victim's records are drained: its read must come through.
    await until('the victim\'s read of /etc/shadow in the log', () => (readEvents(agent.logPath).some((e) => e.container.id === victimId && e.args['path'] === '/etc/shadow') ? true : undefined), 120_000);
    assert.equal(docker('inspect', '-f', '{{.State.Running}}', flooder), 'true', 'the flood lasted the whole test');
  } finally {
    docker('rm', '-f', flooder);
    docker('rm', '-f', victim);
  }
  const { code, events } = await agent.stop();
  rmSync(dirname(agent.logPath), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, agent.stderr());
  const lost = events.filter((e) => e.kind === 'lost' && e.args['record_kind'] !== 'output');
  const count = (es: VigilEvent[]) => es.reduce((n, e) => n + Number(e.args['lost']), 0);
  const ofFlooder = lost.filter((e) => e.container.id === flooderId);
  const victimKeys = new Set(events.filter((e) => e.container.id === victimId).map((e) => e.namespaces.containerKey));
  t.diagnostic(`flooder lost ${count(ofFlooder)} (over budget ${count(ofFlooder.filter((e) => e.args['reason'] === 'budget'))}, ring full ${count(ofFlooder.filter((e) => e.args['reason'] === 'ring_full'))}); entries naming others: ${lost.length - ofFlooder.length}`);

  const read = events.find((e) => e.container.id === victimId && e.args['path'] === '/etc/shadow');
  assert.ok(read, 'the victim\'s read of /etc/shadow is reported');
  assert.equal(read.verdict.level, 'INSECURE');
  assert.ok(count(ofFlooder.filter((e) => e.args['reason'] === 'budget')) > 0, 'the flood\'s excess is shed, as the flooder\'s loss');
  for (const e of ofFlooder) {
    assert.equal(e.container.name, flooder, 'a loss entry names the flooder');
    assert.equal(e.container.image, TEST_IMAGES.busybox);
  }
  assert.deepEqual(lost.filter((e) => e.container.id === victimId || victimKeys.has(e.namespaces.containerKey)).map((e) => e.args), [], 'the victim lost nothing');
});
