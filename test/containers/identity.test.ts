// Container identity taken when the container's cgroup is made (cgroup.bpf.c), in kernel
// order: short-lived containers that are gone before the agent reads their records
// still have every event carry their id (and name and image, which the runtime's events
// name). Real agent, real containers; the backlog is made by stopping the agent
// (SIGSTOP) while the containers run and exit, the kernel ring buffer holding the records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { readEvents, startAgent } from '../helpers/agent-process.js';
import type { VigilEvent } from '../../src/events/index.js';

const skip = missingForContainerTests();
const COUNT = 10;
const PARALLEL = 5;
const RING = String(64 * 1024 * 1024);

interface Run { name: string; marker: string; hostname: string; code: number | null; stderr: string }

/** `docker run --rm NAME busybox sh -c 'cat /etc/hostname' MARKER`: the marker is $0, in the sh exec's argv. */
function runOne(name: string, marker: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('docker', ['run', '--rm', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sh', '-c', 'cat /etc/hostname', marker], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ name, marker, hostname: out.trim(), code, stderr: err }));
  });
}

/** COUNT containers, PARALLEL at a time, each started as soon as a slot frees. */
async function runContainers(tag: string): Promise<Run[]> {
  const specs = Array.from({ length: COUNT }, (_, i) => ({ name: uniqueName(`vigil-ident-${tag}-${i}`), marker: `vigil-ident-${tag}-${process.pid}-${i}` }));
  const runs: Run[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < specs.length) {
      const s = specs[next++]!;
      runs.push(await runOne(s.name, s.marker));
    }
  }));
  for (const r of runs) {
    assert.equal(r.code, 0, `${r.name}: ${r.stderr}`);
    assert.match(r.hostname, /^[0-9a-f]{12}$/, `${r.name} printed its hostname`);
  }
  return runs;
}

/** The exec of a run's sh (the marker in its argv), which names its pid namespace. */
function markerExec(events: VigilEvent[], r: Run): VigilEvent | undefined {
  return events.find((e) => e.kind === 'exec' && e.process.args.includes(r.marker));
}

/** Polls the log until every run's container has its init's exit event (bounded). */
async function waitForAll(logPath: string, runs: Run[], timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = readEvents(logPath);
    const done = runs.every((r) => {
      const m = markerExec(events, r);
      return m && events.some((e) => e.kind === 'exit' && e.namespaces.containerKey === m.namespaces.containerKey && e.process.nsPid === 1);
    });
    if (done) return;
    if (Date.now() > until) throw new Error(`not every container's events arrived within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Checked { events: number; named: number; catNamed: number }

/**
 * Every exec and file event of each run's container (by its container key, so runc's
 * setup in the host's pid namespace counts too) carries its full id; name and image,
 * where present, are its own.
 */
function checkIdentities(events: VigilEvent[], runs: Run[]): Checked {
  const out: Checked = { events: 0, named: 0, catNamed: 0 };
  for (const r of runs) {
    const m = markerExec(events, r);
    assert.ok(m, `the sh exec of ${r.name} (marker ${r.marker}) was logged`);
    // The kernel's key of the sh exec (its cgroup's kernfs id, unique while the host runs):
    // runc's setup of the container and everything the container runs carry it too. (Not
    // the pid namespace: its inode number is reused once the container is gone.)
    const key = m.namespaces.containerKey;
    const mine = events.filter((e) => e.namespaces.containerKey === key && (e.kind === 'exec' || e.kind === 'file'));
    const id = m.container.id;
    assert.match(id, /^[0-9a-f]{64}$/, `${r.name}: its sh exec carries a full container id (got '${id}')`);
    assert.ok(id.startsWith(r.hostname), `${r.name}: id ${id} is the container's (hostname ${r.hostname})`);
    const cat = mine.find((e) => e.kind === 'exec' && e.process.args[0] === 'cat' && e.process.args[1] === '/etc/hostname');
    assert.ok(cat, `${r.name}: cat's exec was logged`);
    assert.ok(mine.some((e) => e.kind === 'file' && JSON.stringify(e.args).includes('/etc/hostname')), `${r.name}: cat's open of /etc/hostname was logged`);
    for (const e of mine) {
      assert.equal(e.container.id, id, `${r.name}: ${e.kind} ${e.syscall} of ${e.process.comm} (seq ${e.seq}) carries the id`);
      if (e.container.name !== '') {
        assert.equal(e.container.name, r.name, `${r.name}: seq ${e.seq} names the container`);
        assert.equal(e.container.image, TEST_IMAGES.busybox, `${r.name}: seq ${e.seq} names the image`);
        out.named++;
      }
    }
    if (cat.container.name === r.name) out.catNamed++;
    out.events += mine.length;
  }
  return out;
}

/**
 * No record of this test's containers lost. Loss entries name their container: another
 * container's flood on a shared machine is not this test's; loss the kernel could not tie to
 * a container (id '') may be ours, and counts.
 */
function assertNoLoss(events: VigilEvent[], stderr: string): void {
  const ours = events.filter((e) => e.kind === 'lost' && (e.container.id === '' || e.container.name.startsWith('vigil-ident-')));
  assert.deepEqual(ours.map((e) => ({ ...e.args, container: e.container.name })), [], 'no records of these containers lost');
  assert.doesNotMatch(stderr, /skipped a bad record/);
}

test('10 short-lived containers, 5 at a time: every exec and file event carries the container id, name and image', { skip }, async () => {
  const agent = await startAgent(['--no-default-policy', '--ring-buffer-bytes', RING]);
  let runs: Run[];
  let events: VigilEvent[];
  try {
    runs = await runContainers('live');
    await waitForAll(agent.logPath, runs);
  } finally {
    ({ events } = await agent.stop());
  }
  assertNoLoss(events, agent.stderr());
  const c = checkIdentities(events, runs);
  // The runtime's create event names the container before its cgroup is even made.
  assert.equal(c.catNamed, COUNT, `every cat exec names its container and image (${c.named}/${c.events} events named)`);
});

test('behind a backlog (the agent stopped while 10 containers run and exit): every event still carries its container id', { skip }, async () => {
  const agent = await startAgent(['--no-default-policy', '--ring-buffer-bytes', RING]);
  const pid = agent.child.pid!;
  let runs: Run[];
  let events: VigilEvent[];
  try {
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      runs = await runContainers('stopped');
      // Every container is gone (--rm) before the agent reads a single record of it.
      const rest = 3000 - (Date.now() - stoppedAt);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitForAll(agent.logPath, runs);
  } finally {
    ({ events } = await agent.stop());
  }
  assertNoLoss(events, agent.stderr());
  const c = checkIdentities(events, runs);
  console.log(`# backlog: ${c.events} exec/file events of ${COUNT} containers, all with their id; ${c.named} with name and image`);
});
