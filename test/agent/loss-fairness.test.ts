// One container's flood costs its own events, not the others': while a container floods
// chmod(2) (reported for every call: no filter drops it) faster than the agent can write,
// the kernel's per-container budget sheds the flood's excess, another container's read
// of /etc/shadow is still reported, and the loss entries name the flooding container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

// It failed one CI run in three (issue 9): the victim's read was not in the log within 120 s.
// The cause was the reader, not the ring: under a sustained flood one libbpf poll never ends
// (it reads while records keep coming), so the worker's bound on batches in flight was never
// checked; batches piled up in the agent's heap (10 GB seen) and the victim's record waited
// behind them for minutes. With the bound kept (drain-worker.ts) the ring really fills, and two
// kernel changes (bpf/common.h vigil_submit) keep the victim's records: the price of a record
// stops doubling at 32 tokens per KiB (a container's start, ~230 records, costs less than a
// burst at the top of the ring), and the ring's last quarter above the pressure mark is kept
// for containers not refused for budget in the last second, which the flooder always is.

const ringFillSource = resolve(dirname(fixtureSource), 'ring-fill.c');

/** The map id of the agent's ring buffer (BPF_MAP_TYPE_RINGBUF, 27), from its fds. */
function ringMapId(pid: number): string | undefined {
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    if (/^map_type:\s+27$/m.test(info)) return /^map_id:\s+(\d+)$/m.exec(info)?.[1];
  }
  return undefined;
}

for (const stall of [false, true]) {
  const what = stall
    // The reserve itself: with the agent stopped nothing is read, the flood fills the ring
    // up to the reserve and the victim's whole start must fit in what is left.
    ? 'while the agent is stopped and the ring fills'
    : 'while the agent keeps reading';
  test(`a flood of chmods from one container, ${what}: another container's cat /etc/shadow is reported, and the loss is the flooder's`, {
    skip, timeout: 600_000,
  }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-fair-'));
    const flood = join(dir, 'chmod-flood');
    execFileSync('cc', ['-O2', '-static', '-o', flood, fixtureSource]);
    const metrics = join(dir, 'vigil.prom');
    // The default policy and capture; the log keeps INSECURE events only (a read of
    // /etc/shadow, and lost entries: rule "records lost"), so a flood does not fill the disk.
    // /dev/null takes every event, so the capture is the full default one (alerts alone narrow it).
    // The default ring (16 MiB): its reserve (the top 1 MiB) holds the victim's start (~230
    // records, ~100 KiB) beside what other tests' containers on this busy machine put there
    // (a 4 MiB ring's 256 KiB reserve was seen full of four of them under load). The flood
    // still fills it within seconds, once the agent's bound on batches in flight is reached.
    // Ready within 3 minutes: on this busy machine loading the programs alone has taken a minute.
    const agent = await startAgent(['--metrics', metrics, ALERTS_ONLY_LOG, '--output', 'jsonl:/dev/null'], 180_000);
    const pid = agent.child.pid as number;
    const flooder = uniqueName('vigil-flood');
    const victim = uniqueName('vigil-victim');
    let flooderId = '';
    let victimId = '';
    let stopped = false;
    let unreadNow: (() => number) | undefined;
    let endUnread = 0;
    try {
      flooderId = docker('run', '-d', '--pull', 'never', '--name', flooder, '-v', `${flood}:/flood:ro`, TEST_IMAGES.busybox, '/flood', '/tmp/flood');
      // The flood has the ring under pressure once the kernel sheds part of it (metrics: every 5 s).
      const pressed = await until('the kernel to shed part of the flood', () => (kernelLoss(metrics, 'over_budget') > 0 ? true : undefined), 120_000).catch(() => false);
      if (!pressed) {
        // A ring that overflowed with nothing shed means the budget did not act: a failure.
        assert.equal(kernelLoss(metrics, 'lost'), 0, 'the ring overflowed but no container\'s budget was enforced');
        docker('rm', '-f', flooder);
        await agent.stop();
        rmSync(dirname(agent.logPath), { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
        t.skip('the flood never outpaced the agent here (no pressure on the ring within 120 s): nothing to share fairly');
        return;
      }
      if (stall) {
        const fill = join(dir, 'ring-fill');
        execFileSync('cc', ['-O2', '-o', fill, ringFillSource]);
        const id = ringMapId(pid);
        assert.ok(id, 'the agent holds its ring buffer');
        const unread = () => Number(execFileSync(fill, [id], { encoding: 'utf8' }));
        unreadNow = unread;
        process.kill(pid, 'SIGSTOP');
        stopped = true;
        // Nothing is read now: the flood fills the ring at its rising price until it is kept
        // out of the reserve, the last sixteenth of the default ring (a quarter of the room
        // above the 75 % mark). Before the change it then paid its way into the rest too.
        const reserve = (ring: number) => ring - ring / 16;
        const full = await until('the flood to fill the ring up to its reserve', () => (unread() >= reserve(16 << 20) ? true : undefined), 120_000).catch(() => false);
        if (!full) {
          process.kill(pid, 'SIGCONT');
          stopped = false;
          t.diagnostic(`the ring held ${unread()} bytes unread after 120 s: the flood did not reach the reserve here, so the victim ran below it`);
        }
      }
      victimId = docker('run', '-d', '--pull', 'never', '--name', victim, TEST_IMAGES.busybox, 'cat', '/etc/shadow');
      docker('wait', victim);
      if (unreadNow) {
        endUnread = unreadNow();
        t.diagnostic(`unread in the ring when the victim ended: ${endUnread} bytes`);
      }
      if (stopped) {
        process.kill(pid, 'SIGCONT');
        stopped = false;
      }
      // Still flooding while the victim's records are drained: its read must come through.
      // Not there in time: the assertions below say why (the victim's loss entries, if any).
      await until('the victim\'s read of /etc/shadow in the log', () => (readEvents(agent.logPath).some((e) => e.container.id === victimId && e.args['path'] === '/etc/shadow') ? true : undefined), 240_000).catch((e: Error) => t.diagnostic(e.message));
      assert.equal(docker('inspect', '-f', '{{.State.Running}}', flooder), 'true', 'the flood lasted the whole test');
    } finally {
      if (stopped) process.kill(pid, 'SIGCONT');
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
    // The reserve's stated limit (bpf/common.h vigil_submit): it is shared by every container
    // within its budget. On this shared machine other tests' containers starting during the
    // stop can fill it between them; the ring is then full to the last record and they lose
    // records too. That is not this test's question: say so rather than fail.
    const othersRingFull = lost.filter((e) => e.args['reason'] === 'ring_full' && e.container.id !== flooderId && e.container.id !== victimId);
    if (stall && !read && endUnread > (16 << 20) - 8192 && othersRingFull.length > 0) {
      t.skip(`the ring was full (${endUnread} bytes unread) when the victim ended: ${othersRingFull.length} loss entries of other containers show them filling the reserve during the stop`);
      return;
    }
    // Loss of the victim's key before its name was known is found by key too (its first events name it).
    const ofVictim = lost.filter((e) => e.container.id === victimId || victimKeys.has(e.namespaces.containerKey));
    assert.deepEqual(ofVictim.map((e) => e.args), [], 'the victim lost nothing');
    assert.ok(read, 'the victim\'s read of /etc/shadow is reported');
    assert.equal(read.verdict.level, 'INSECURE');
    assert.ok(count(ofFlooder.filter((e) => e.args['reason'] === 'budget')) > 0, 'the flood\'s excess is shed, as the flooder\'s loss');
    for (const e of ofFlooder) {
      assert.equal(e.container.name, flooder, 'a loss entry names the flooder');
      assert.equal(e.container.image, TEST_IMAGES.busybox);
    }
  });
}
