// The real agent writing the tamper-evident log (--log): every entry of the JSON-lines
// output is in the log with the same bytes; an INSECURE event is sealed at once with the
// batch timer at an hour; heartbeats; the start record's self-measurement; a restart
// continues the chain; kill -9 mid-batch loses nothing written and the log still verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { missingForContainerTests, runToEnd } from '../helpers/host.js';
import { tempDir } from '../helpers/observe.js';
import { CHAIN_SUFFIX_LENGTH, listSegments, verifyLogDir, type Seal } from '../../src/log/index.js';
import { until } from '../helpers/wait.js';

const skip = missingForContainerTests();

interface LogLine { seq: number; kind: string; syscall: string; args: Record<string, unknown>; container: { id: string }; verdict: { level: string; rules: string[] } }

function logLines(dir: string): { entries: Array<{ raw: string; e: LogLine }>; seals: Seal[] } {
  const entries: Array<{ raw: string; e: LogLine }> = [];
  const seals: Seal[] = [];
  for (const seg of listSegments(dir)) {
    // The last piece is '' or a line still being written: left for the next read.
    for (const raw of readFileSync(seg.path, 'utf8').split('\n').slice(0, -1)) {
      const o = JSON.parse(raw) as { seal?: Seal } & LogLine;
      if (o.seal) seals.push(o.seal);
      else entries.push({ raw, e: o });
    }
  }
  return { entries, seals };
}

const runContainer = (script: string): string => runToEnd('vigil-log', script);

test('the agent chains every entry into the log; INSECURE is sealed at once; the JSON lines are the log\'s own bytes', { skip }, async () => {
  const dir = join(tempDir('vlogtest'), 'log');
  const agent: RunningAgent = await startAgent(['--log', dir, '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '1']);
  let stopped = false;
  try {
    // The start record (with the self-measurement) is sealed at once.
    const start = await until('the start record', () => logLines(dir).entries.find((x) => x.e.kind === 'agent' && x.e.syscall === 'start'));
    const m = start.e.args as { programs: Array<{ name: string; tag: string; xlatedSha256: string }>; build: { sha256: string; files: number }; policy: { sha256: string } };
    assert.ok(m.programs.length >= 4, `programs measured: ${m.programs.length}`);
    assert.ok(m.programs.every((p) => /^[0-9a-f]{16}$/.test(p.tag) && /^[0-9a-f]{64}$/.test(p.xlatedSha256)), JSON.stringify(m.programs.slice(0, 2)));
    assert.ok(m.programs.some((p) => p.name === 'vigil_sys_enter'), m.programs.map((p) => p.name).join(' '));
    assert.match(m.build.sha256, /^[0-9a-f]{64}$/);
    assert.ok(m.build.files > 20);
    assert.match(m.policy.sha256, /^[0-9a-f]{64}$/);
    assert.ok(logLines(dir).seals.some((s) => s.lastSeq >= start.e.seq), 'the start record is sealed');

    const id = runContainer('cat /etc/passwd >/dev/null; echo done');
    const alert = await until('the INSECURE event in the log', () => logLines(dir).entries.find((x) => x.e.container.id === id && x.e.verdict.level === 'INSECURE'));
    assert.ok(alert.e.verdict.rules.includes('opening passwd'), JSON.stringify(alert.e.verdict));
    // Sealed on its own: the batch is 100,000 entries and its timer an hour.
    const seal = await until('a seal covering the alert', () => logLines(dir).seals.find((s) => s.firstSeq <= alert.e.seq && s.lastSeq >= alert.e.seq), 5000);
    assert.equal(seal.reason, 'insecure');
    assert.equal(seal.lastSeq, alert.e.seq, 'the seal ends at the alert');
    await until('two heartbeats', () => logLines(dir).entries.filter((x) => x.e.syscall === 'heartbeat').length >= 2);

    const { code, events } = await agent.stop();
    stopped = true;
    assert.equal(code, 0, agent.stderr());
    const { entries, seals } = logLines(dir);
    const sum = verifyLogDir(dir);
    assert.deepEqual([sum.entries, sum.firstSeq, sum.lastSeq, sum.unsealed], [entries.length, 1, entries.length, 0]);
    assert.equal(seals.at(-1)?.reason, 'stop');
    assert.equal(entries.at(-1)?.e.syscall, 'stop');
    // Every JSON line of --output is, byte for byte, a log entry's canonical bytes.
    const bySeq = new Map(entries.map((x) => [x.e.seq, x.raw]));
    const jsonl = readFileSync(agent.logPath, 'utf8').split('\n').filter(Boolean);
    assert.equal(jsonl.length, events.length);
    assert.equal(jsonl.length, entries.length, 'the JSON-lines output has every entry, the agent\'s own records too');
    for (const line of jsonl) {
      const seq = (JSON.parse(line) as { seq: number }).seq;
      const raw = bySeq.get(seq);
      assert.ok(raw, `seq ${seq} in the log`);
      assert.equal(raw.slice(0, -CHAIN_SUFFIX_LENGTH) + '}', line);
    }
  } finally {
    if (!stopped) await agent.stop();
  }
});

test('a restart continues seq and chain; kill -9 in the middle of a batch loses nothing written', { skip }, async () => {
  const dir = join(tempDir('vlogtest'), 'log');
  const first = await startAgent(['--log', dir, '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '0']);
  const id1 = runContainer('for i in 1 2 3; do head -c1 /etc/hostname >/dev/null; done');
  await until('the first container\'s events written', () => logLines(dir).entries.some((x) => x.e.container.id === id1 && x.e.kind === 'exit'));
  assert.equal((await first.stop()).code, 0);
  const afterFirst = verifyLogDir(dir);

  const second = await startAgent(['--log', dir, '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '0']);
  const id2 = runContainer('for i in 1 2 3; do head -c1 /etc/hostname >/dev/null; done');
  // Written but not sealed (no INSECURE, huge batch, timer at an hour): then the agent dies.
  const written = await until('the second container\'s events written', () => { const l = logLines(dir).entries.filter((x) => x.e.container.id === id2); return l.some((x) => x.e.kind === 'exit') && l; });
  second.child.ref(); // startAgent unrefs it; the test waits for its exit
  const died = new Promise((r) => second.child.once('exit', r));
  second.child.kill('SIGKILL');
  await died;
  // Entries after the last seal (other containers' INSECURE events may have sealed ours).
  const tail = readFileSync(listSegments(dir).at(-1)?.path ?? '', 'utf8').split('\n').slice(0, -1);
  const lastSeal = tail.map((l) => l.startsWith('{"seal"')).lastIndexOf(true);
  const unsealedAtKill = tail.length - 1 - lastSeal;

  const third = await startAgent(['--log', dir, '--log-batch-ms', '3600000', '--heartbeat', '1']);
  // A SIGTERM right after 'ready' can kill the agent before its handler runs (seen on main
  // without --log too): wait for its first heartbeat.
  await until('the third run\'s heartbeat', () => { const l = logLines(dir).entries; const s = l.map((x) => x.e.syscall).lastIndexOf('start'); return s >= 0 && l.slice(s).some((x) => x.e.syscall === 'heartbeat'); });
  const { code } = await third.stop();
  assert.equal(code, 0, `${third.stderr()} (signal ${String(third.child.signalCode)})`);
  const sum = verifyLogDir(dir);
  assert.equal(sum.firstSeq, 1);
  assert.ok(sum.lastSeq > afterFirst.lastSeq + written.length);
  const { entries } = logLines(dir);
  for (const w of written) assert.equal(entries.find((x) => x.e.seq === w.e.seq)?.raw, w.raw, `entry ${w.e.seq} kept as written`);
  const starts = entries.filter((x) => x.e.syscall === 'start');
  assert.equal(starts.length, 3);
  const recovered = entries.filter((x) => x.e.syscall === 'log-recovered');
  if (unsealedAtKill > 0) assert.deepEqual(recovered.map((x) => x.e.args['unsealed']), [unsealedAtKill], 'the recovery is an entry');
  else assert.equal(recovered.length, 0);
  assert.deepEqual(entries.map((x) => x.e.seq), entries.map((_, i) => i + 1), 'seq dense across the three runs');
});
