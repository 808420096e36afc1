// Container actions on real containers through the Docker Engine API, asked for by rules
// (action: pause, stop, isolate) and by an operator through the control socket (vigil
// respond), with the safety rails: protected containers by name and by label, rate limits
// under a burst of 1,000 matching events, dry run. Every action is in the log with its outcome.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { readEvents, runVigil, startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { requestAction } from '../../src/respond/index.js';
import type { VigilEvent } from '../../src/events/index.js';
import { until } from '../helpers/wait.js';

const skip = missingForContainerTests();
const TAG = `${process.pid}`;
/** A file whose open (it need not exist) triggers the rule named after it. */
const trigger = (what: string) => `/etc/vigil-t${TAG}-${what}`;
const RULES: Array<[string, string]> = [
  ['pause', 'pause'], ['stop', 'stop'], ['isolate', 'isolate'], ['burst', 'isolate'], ['burstkill', 'kill'],
  ['ppause', 'pause'], ['pstop', 'stop'], ['pkill', 'kill'], ['decoy', 'kill'], ['escalate', 'pause'], ['drypause', 'pause'],
];

function writeSetup(): { config: string; policy: string; socket: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-respond-'));
  const policy = join(dir, 'actions.yaml');
  writeFileSync(policy, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: test-respond-actions', 'spec:', '  rules:',
    ...RULES.flatMap(([what, action]) => [
      `    - name: test ${what}`, '      kinds: [file]', `      condition: has(args.path) && args.path == "${trigger(what)}"`, `      action: ${action}`, '      severity: high',
    ]), ''].join('\n'));
  const socket = join(dir, 'ctl', 'respond.sock');
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, [
    'respond:', `  socket: ${socket}`, '  stopTimeoutSeconds: 1',
    '  protect:', `    names: ["vigil-protected-${TAG}-*"]`, '    labels: ["vigil.test/protected=yes"]',
    // One action per rule and per container: each burst must end in one action.
    '  rateLimit:', '    perRule: {count: 1, seconds: 600}', '    perContainer: {count: 1, seconds: 600}', '',
  ].join('\n'));
  return { config, policy, socket };
}

interface State { Running: boolean; Paused: boolean; RestartPolicy: string; Networks: string[] }
function state(name: string): State {
  const j = JSON.parse(docker('inspect', name)) as Array<{ State: { Running: boolean; Paused: boolean }; HostConfig: { RestartPolicy: { Name: string } }; NetworkSettings: { Networks: Record<string, unknown> | null } }>;
  const c = j[0]!;
  return { Running: c.State.Running, Paused: c.State.Paused, RestartPolicy: c.HostConfig.RestartPolicy.Name, Networks: Object.keys(c.NetworkSettings.Networks ?? {}) };
}

const records = (agent: RunningAgent, name: string): VigilEvent[] => readEvents(agent.logPath).filter((e) => e.kind === 'response' && (e.container.name === name));
const eventsOf = (agent: RunningAgent, name: string): VigilEvent[] => readEvents(agent.logPath).filter((e) => e.container.name === name);

describe('container actions, safety rails and the control socket', { skip }, () => {
  let agent: RunningAgent;
  let setup: ReturnType<typeof writeSetup>;
  const started: string[] = [];
  const run = (name: string, script: string, extra: string[] = []) => {
    started.push(name);
    docker('run', '-d', '--pull', 'never', '--name', name, ...extra, TEST_IMAGES.busybox, 'sh', '-c', script);
  };

  before(async () => {
    setup = writeSetup();
    agent = await startAgent(['--config', setup.config, '--policy', setup.policy]);
  });
  after(async () => {
    await agent?.stop();
    for (const n of started) {
      try { docker('rm', '-f', n); } catch { /* gone */ }
    }
  });

  test('action: pause freezes the container; the event says pending, the record done', async () => {
    const name = uniqueName('vigil-pause');
    run(name, `cat ${trigger('pause')} 2>/dev/null; sleep 300`);
    await until('paused', () => (state(name).Paused ? true : undefined));
    const rec = await until('record', () => records(agent, name)[0]);
    assert.equal(rec.args['action'], 'pause');
    assert.equal(rec.args['outcome'], 'done');
    assert.equal(rec.args['layer'], 'runtime');
    assert.equal(rec.args['rule'], 'test pause');
    const ev = eventsOf(agent, name).find((e) => e.seq === rec.args['trigger_seq']);
    assert.equal(ev?.response?.outcome, 'pending');
    assert.equal(ev?.verdict.action, 'pause');
  });

  test('action: stop stops the container and sets its restart policy "always" to "no", saying so', async () => {
    const name = uniqueName('vigil-stop');
    run(name, `sleep 1; cat ${trigger('stop')} 2>/dev/null; sleep 300`, ['--restart', 'always']);
    const rec = await until('record', () => records(agent, name)[0]);
    assert.equal(rec.args['outcome'], 'done', JSON.stringify(rec.response));
    assert.equal(rec.response?.['restartPolicyWas'], 'always');
    assert.equal(rec.response?.['restartPolicy'], 'no');
    const s = state(name);
    assert.equal(s.Running, false);
    assert.equal(s.RestartPolicy, 'no', 'the runtime will not start it again');
  });

  test('action: isolate disconnects the container from every network; it runs on with only lo', async () => {
    const name = uniqueName('vigil-isolate');
    run(name, `sleep 1; cat ${trigger('isolate')} 2>/dev/null; sleep 300`);
    const rec = await until('record', () => records(agent, name)[0]);
    assert.equal(rec.args['outcome'], 'done', JSON.stringify(rec.response));
    assert.deepEqual(rec.response?.['networks'], ['bridge']);
    const s = state(name);
    assert.equal(s.Running, true);
    assert.deepEqual(s.Networks, []);
    assert.equal(docker('exec', name, 'ls', '/sys/class/net'), 'lo');
  });

  test('a protected container (by name, by label) is never acted on; the record says protected', async () => {
    const byName = uniqueName(`vigil-protected-${TAG}`);
    run(byName, `cat ${trigger('ppause')} 2>/dev/null; sleep 300`);
    const byLabel = uniqueName('vigil-labelled');
    run(byLabel, `cat ${trigger('pstop')} 2>/dev/null; sleep 300`, ['--label', 'vigil.test/protected=yes']);
    const r1 = await until('record', () => records(agent, byName)[0]);
    const r2 = await until('record', () => records(agent, byLabel)[0]);
    assert.equal(r1.args['outcome'], 'protected');
    assert.match(String(r1.args['reason']), /protect\.names/);
    assert.equal(r2.args['outcome'], 'protected');
    assert.match(String(r2.args['reason']), /protect\.labels/);
    assert.equal(state(byName).Paused, false);
    assert.equal(state(byLabel).Running, true);
    // A kill too: the shell that opens the file (a builtin's redirection, in the shell itself) lives on.
    const killable = uniqueName('vigil-labelled-kill');
    run(killable, `while true; do read x < ${trigger('pkill')}; sleep 0.2; done 2>/dev/null`, ['--label', 'vigil.test/protected=yes']);
    const r3 = await until('three records', () => {
      const r = records(agent, killable);
      return r.length >= 3 ? r : undefined;
    });
    assert.deepEqual([...new Set(r3.map((r) => r.args['outcome']))], ['protected'], JSON.stringify(r3.map((r) => r.response)));
    assert.equal(state(killable).Running, true);
    // The operator cannot act on them either.
    const cli = await runVigil(['respond', 'stop', byName, '--socket', setup.socket]);
    assert.equal(cli.code, 1, cli.stderr + cli.stdout);
    assert.match(cli.stdout, /stop .*: protected/);
    assert.equal(state(byName).Running, true);
  });

  test('a burst of 1,000 matching events: one action, every other one logged as limited', async () => {
    const name = uniqueName('vigil-burst');
    // One shell opens the file 1,000 times (each a failed open: an event each); isolation does not stop it.
    run(name, `i=0; while [ $i -lt 1000 ]; do cat ${trigger('burst')} 2>/dev/null; i=$((i+1)); done; echo done; sleep 300`);
    const matched = await until('1,000 events', () => {
      const es = eventsOf(agent, name).filter((e) => e.kind !== 'response' && e.verdict.rules.includes('test burst'));
      return es.length >= 1000 ? es : undefined;
    }, 120_000);
    const recs = await until('a record per event', () => {
      const r = records(agent, name);
      return r.length >= matched.length ? r : undefined;
    }, 60_000);
    const outcomes = new Map<string, number>();
    for (const r of recs) outcomes.set(String(r.args['outcome']), (outcomes.get(String(r.args['outcome'])) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(outcomes), { done: 1, limited: matched.length - 1 });
    assert.equal(matched.filter((e) => e.response?.outcome === 'limited').length, matched.length - 1);
  });

  test('a burst of kills from 300 processes: the per-rule limit lets one through', async () => {
    const name = uniqueName('vigil-burstkill');
    run(name, `i=0; while [ $i -lt 300 ]; do cat ${trigger('burstkill')} 2>/dev/null; i=$((i+1)); done; sleep 300`);
    const recs = await until('300 records', () => {
      const r = records(agent, name);
      return r.length >= 300 ? r : undefined;
    }, 120_000);
    const acted = recs.filter((r) => r.args['outcome'] !== 'limited');
    assert.equal(acted.length, 1, JSON.stringify(acted.map((r) => r.response)));
    // The first cat may have exited before the kill: done, or failed because it was gone.
    assert.ok(acted[0]!.args['outcome'] === 'done' || /already exited/.test(String(acted[0]!.args['error'])), JSON.stringify(acted[0]!.response));
    assert.ok(recs.filter((r) => r.args['outcome'] === 'limited').every((r) => /rateLimit\.(perRule|perContainer)/.test(String(r.args['reason']))));
  });

  test('decoys that use up a container\'s kills do not use up its pause', async () => {
    const name = uniqueName('vigil-decoy');
    run(name, `cat ${trigger('decoy')} 2>/dev/null; cat ${trigger('decoy')} 2>/dev/null; cat ${trigger('escalate')} 2>/dev/null; sleep 300`);
    await until('paused', () => (state(name).Paused ? true : undefined));
    const recs = await until('three records', () => {
      const r = records(agent, name);
      return r.length >= 3 ? r : undefined;
    });
    assert.deepEqual(recs.map((r) => [r.args['action'], r.args['outcome'] === 'limited' ? 'limited' : 'acted']).sort(), [['kill', 'acted'], ['kill', 'limited'], ['pause', 'acted']]);
  });

  test('vigil respond pause|kill through the control socket (0600, token): acts, logs, and refuses a bad token', async () => {
    assert.equal(statSync(setup.socket).mode & 0o777, 0o600);
    assert.equal(statSync(`${setup.socket}.token`).mode & 0o777, 0o600);
    const name = uniqueName('vigil-operator');
    run(name, 'sleep 300', ['--restart', 'on-failure']);
    const paused = await runVigil(['respond', 'pause', name, '--socket', setup.socket]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /pause .*: done/);
    assert.equal(state(name).Paused, true);
    const killed = await runVigil(['respond', 'kill', name, '--socket', setup.socket, '--json']);
    assert.equal(killed.code, 0, killed.stderr);
    const answer = JSON.parse(killed.stdout) as { ok: boolean; response: Record<string, unknown> };
    assert.equal(answer.response['restartPolicyWas'], 'on-failure');
    await until('stopped', () => (state(name).Running ? undefined : true));
    assert.equal(state(name).RestartPolicy, 'no');
    const recs = await until('two records', () => {
      const r = records(agent, name);
      return r.length >= 2 ? r : undefined;
    });
    assert.deepEqual(recs.map((r) => [r.args['action'], r.args['outcome'], r.args['by']]), [['pause', 'done', 'operator'], ['kill', 'done', 'operator']]);
    const bad = await requestAction(setup.socket, 'f'.repeat(64), { action: 'stop', container: name, timeoutSeconds: undefined });
    assert.deepEqual(bad, { ok: false, error: 'bad or missing token' });
    const token = readFileSync(`${setup.socket}.token`, 'utf8').trim();
    const unknown = await requestAction(setup.socket, token, { action: 'stop', container: 'vigil-no-such-container-x', timeoutSeconds: undefined });
    assert.equal(unknown.ok && unknown.response.outcome, 'failed');
    assert.match(agent.stderr(), /control socket: refused a request: bad or missing token/);
  });
});

describe('the control socket against a caller that should not get in', { skip }, () => {
  test('another user cannot connect; an oversized request and a token guess are refused; the agent serves on', async () => {
    const setup = writeSetup();
    const agent = await startAgent(['--config', setup.config, '--policy', setup.policy, '--no-default-policy']);
    try {
      // The directory and socket modes are the kernel's check: nobody gets EACCES at connect().
      const probe = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e',
        `require('net').connect(${JSON.stringify(setup.socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`], { encoding: 'utf8' });
      assert.equal(probe.stdout.trim(), 'EACCES', probe.stderr);
      const big = await new Promise<string>((resolve, reject) => {
        const s = net.connect(setup.socket);
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('end', () => resolve(got));
        s.on('error', reject);
        s.write('x'.repeat(70 * 1024));
      });
      assert.match(big, /"ok":false,"error":"request longer than 65536 bytes"/);
      for (let i = 0; i < 20; i++) {
        const r = await requestAction(setup.socket, randomBytes(32).toString('hex'), { action: 'kill', container: 'anything', timeoutSeconds: undefined });
        assert.deepEqual(r, { ok: false, error: 'bad or missing token' });
      }
      const token = readFileSync(`${setup.socket}.token`, 'utf8').trim();
      const still = await requestAction(setup.socket, token, { action: 'pause', container: 'vigil-no-such-container-y', timeoutSeconds: undefined });
      assert.equal(still.ok && still.response.outcome, 'failed', 'the agent still serves its own token');
    } finally {
      await agent.stop();
    }
  });
});

describe('--dry-run with container actions', { skip }, () => {
  test('nothing is acted on; the event and the record say what would have been done', async () => {
    const setup = writeSetup();
    const agent = await startAgent(['--config', setup.config, '--policy', setup.policy, '--dry-run']);
    const name = uniqueName('vigil-drypause');
    try {
      docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sh', '-c', `cat ${trigger('drypause')} 2>/dev/null; sleep 300`);
      const rec = await until('record', () => records(agent, name)[0]);
      assert.equal(rec.args['outcome'], 'would');
      assert.match(String(rec.args['reason']), /would pause the container \(dry run\)/);
      assert.equal(state(name).Paused, false);
      const cli = await runVigil(['respond', 'stop', name, '--socket', setup.socket]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /stop .*: would/);
      assert.equal(state(name).Running, true);
    } finally {
      await agent.stop();
      try { docker('rm', '-f', name); } catch { /* gone */ }
    }
  });
});
