// The enrichment pipeline's ordering contract, with a resolver whose answers the test
// controls: records wait in kernel order behind a key being resolved, host keys are
// dropped and pushed down, and a large held burst drains in one pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventPipeline, type KeyResolver } from '../../src/agent/index.js';
import { ContainerResolver, type KeyIdentity } from '../../src/containers/index.js';
import type { RawRecord, TaskContext, VigilEvent } from '../../src/events/index.js';

function task(key: bigint, pid: number): TaskContext {
  return {
    timeNs: BigInt(pid), pid, tgid: pid, nsPid: pid, ppid: 1, nsPpid: 0, uid: 0, gid: 0, mntNs: 1, pidNs: 1,
    capEffective: 1n, cgroupId: 1n, containerKey: key, comm: 'x', parentComm: 'y', truncated: false, containerSetup: false, kernelKill: undefined,
  };
}
const exitOf = (key: bigint, pid: number): RawRecord => ({ kind: 'exit', task: task(key, pid), exitCode: 0, signal: 0 });

/** Answers each key when the test says so. */
class ControlledResolver implements KeyResolver {
  private readonly known = new Map<bigint, KeyIdentity>();
  private readonly waiting = new Map<bigint, (i: KeyIdentity) => void>();
  lookup(key: bigint) { return this.known.get(key); }
  resolve(key: bigint) { return new Promise<KeyIdentity | undefined>((r) => this.waiting.set(key, r)); }
  answer(key: bigint, identity: KeyIdentity) {
    this.known.set(key, identity);
    this.waiting.get(key)?.(identity);
  }
}

const container = (id: string): KeyIdentity => ({ type: 'container', container: { id, name: id, image: 'img', runtime: 'docker' } });

test('records wait in order behind an unresolved key, host keys are dropped and pushed down', async () => {
  const resolver = new ControlledResolver();
  resolver.answer(1n, container('known'));
  const out: VigilEvent[] = [];
  const ignored: bigint[] = [];
  const p = new EventPipeline({ host: 'h', resolver, emit: (e) => out.push(e), ignoreKey: (k) => ignored.push(k) });
  p.handle(exitOf(1n, 10));         // known: leaves at once
  p.handle(exitOf(2n, 11));         // unknown: waits
  p.handle(exitOf(1n, 12));         // known, but behind 11: waits too
  p.handle(exitOf(3n, 13));         // a host cgroup, unknown yet
  assert.deepEqual(out.map((e) => e.process.pid), [10]);
  resolver.answer(3n, { type: 'host', cgroupPath: '/system.slice/x.service' });
  resolver.answer(2n, container('new'));
  await p.flush();
  assert.deepEqual(out.map((e) => e.process.pid), [10, 11, 12]);
  assert.deepEqual(out.map((e) => e.container.id), ['known', 'new', 'known']);
  assert.deepEqual(out.map((e) => e.seq), [1, 2, 3]);
  assert.deepEqual(ignored, [3n]);
  assert.equal(p.stats.droppedHost, 1);
});

test('a burst of 300,000 records held behind one key drains in order (Array.shift made this minutes)', { timeout: 30_000 }, async () => {
  const resolver = new ControlledResolver();
  let n = 0;
  let last = 0;
  let ordered = true;
  const p = new EventPipeline({
    host: 'h', resolver, ignoreKey: () => {},
    emit: (e) => { n++; if (e.process.pid <= last) ordered = false; last = e.process.pid; },
  });
  for (let i = 1; i <= 300_000; i++) p.handle(exitOf(7n, i));
  assert.equal(p.stats.waiting, 300_000);
  resolver.answer(7n, container('burst'));
  await p.flush();
  assert.equal(n, 300_000);
  assert.ok(ordered, 'events left in kernel order');
  assert.equal(p.stats.waiting, 0);
});

test('the process table forgets a process whose exit record never came, two sweeps after it is gone', () => {
  const done = spawnSync('true');
  const deadPid = done.pid as number; // exited: /proc has no entry for it any more
  const pipeline = new EventPipeline({ host: 'h', resolver: new ControlledResolver(), emit: () => undefined, ignoreKey: () => undefined });
  // A fork record from this (live) process of the now dead child: both get table entries.
  pipeline.handle({ kind: 'fork', task: task(7n, process.pid), childPid: deadPid, childNsPid: 2 });
  assert.equal(pipeline.sweepProcesses(), 0, 'a process just found gone is kept once, for records still queued');
  assert.equal(pipeline.sweepProcesses(), 1, 'and dropped at the next sweep');
  assert.equal(pipeline.sweepProcesses(), 0, 'the live process stays');
});

test('a cgroup record names its key before the key\'s first records: they never wait, and it is not an event', async () => {
  const resolver = new ContainerResolver({ mode: 'v2', root: '/nonexistent-vigil-root' }, { docker: null });
  const out: VigilEvent[] = [];
  const p = new EventPipeline({ host: 'h', resolver, emit: (e) => out.push(e), ignoreKey: () => {} });
  const id = 'c'.repeat(64);
  const cgroup = (key: bigint, path: string): RawRecord => ({ kind: 'cgroup', task: task(0n, 1), id: key, level: 2, path, pathTruncated: false });
  p.handle(cgroup(7n, `/system.slice/docker-${id}.scope`));
  p.handle(cgroup(8n, '/system.slice/cron.service')); // not a container: nothing learned
  p.handle(exitOf(7n, 20));
  assert.deepEqual(out.map((e) => [e.process.pid, e.container.id, e.container.runtime]), [[20, id, 'docker']], 'emitted at once, with the id');
  assert.equal(resolver.lookup(8n), undefined);
  assert.equal(p.stats.cgroups, 2);
  assert.equal(p.stats.waiting, 0);
  p.handle(exitOf(8n, 21)); // looked up as before (and not found here)
  await p.flush();
  assert.deepEqual(out.map((e) => e.container.id), [id, '']);
});
