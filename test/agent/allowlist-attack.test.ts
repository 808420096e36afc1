// An attacker's review of the in-kernel image allow-list check (vigil agent --allowlists;
// bpf/allowlist.h). A static program copied into a busybox container tries to make a system
// call outside busybox's list (memfd_create, ptrace, an x32 call) without being reported,
// or without being stopped before its next instruction under the policy's kill.
// What the check catches is a passing test; what defeats it is a `todo` test naming the
// hole (it fails until the fix, without failing the suite).
// Every container of this file is named `${PREFIX}-*` and the kill policy selects only
// those: other people's containers on this machine are never killed by these agents.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, LogTail, startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { until } from '../helpers/wait.js';
import type { VigilEvent } from '../../src/events/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = resolve(here, '..', '..', '..', 'test', 'agent', 'fixtures');
const skip = missingForContainerTests() ?? (spawnSync('cc', ['--version']).status === 0 ? undefined : 'no C compiler (cc) to build the fixtures');
const RULE = 'syscall not in allow-list';
const dir = mkdtempSync(join(tmpdir(), 'vigil-alattack-'));
const attack = join(dir, 'al-attack');
const offList = join(dir, 'off-list');
const PREFIX = `vigil-alatk-${process.pid}`;

function policy(name: string, body: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', `  name: ${name}`, 'spec:', '  selector:', `    name: ["${PREFIX}-*"]`, ...body, ''].join('\n'));
  return path;
}

const newName = (tag: string) => `${PREFIX}-${tag}-${Math.random().toString(36).slice(2, 6)}`;

function run(name: string, cmd: string[]): void {
  docker('run', '-d', '--rm', '--pull', 'never', '--name', name, '-v', `${attack}:/al-attack:ro`, '-v', `${offList}:/off-list:ro`, TEST_IMAGES.busybox, ...cmd);
}

async function listLoaded(agent: RunningAgent, name: string): Promise<void> {
  await until(`the allow-list of ${name} decided`, () => agent.stderr().includes(`loaded for ${name}:`) || agent.stderr().match(new RegExp(`not checked for ${name} .*`))?.[0], 60_000, 100);
  assert.ok(agent.stderr().includes(`loaded for ${name}:`), agent.stderr().split('\n').filter((l) => l.includes(name)).join('\n'));
}

async function containerWithList(agent: RunningAgent, tag: string): Promise<string> {
  const name = newName(tag);
  run(name, ['sleep', '300']);
  await listLoaded(agent, name);
  return name;
}

function exec(name: string, script: string): string {
  const r = spawnSync('docker', ['exec', name, 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000 });
  return (r.stdout ?? '') + (r.stderr ?? '');
}

const tails = new WeakMap<RunningAgent, LogTail>();
function tail(agent: RunningAgent): LogTail {
  let t = tails.get(agent);
  if (!t) tails.set(agent, (t = new LogTail(agent.logPath, (l) => l.includes(`"name":"${PREFIX}`) || l.includes('"kind":"lost"'))));
  return t;
}
const own = (agent: RunningAgent, name: string): VigilEvent[] => tail(agent).events().filter((e) => e.container.name === name);
const violations = (es: VigilEvent[], call: string) => es.filter((e) => e.args['not_in_allowlist'] === true && e.syscall === call);

describe('attacks on the in-kernel allow-list check', { skip }, () => {
  before(() => {
    execFileSync('cc', ['-O2', '-static', '-pthread', '-o', attack, join(fixtures, 'al-attack.c')]);
    execFileSync('cc', ['-O2', '-static', '-o', offList, join(fixtures, 'off-list.c')]);
  });
  after(() => {
    for (const n of docker('ps', '-aq', '--filter', `name=${PREFIX}`).split('\n').filter(Boolean)) spawnSync('docker', ['rm', '-f', n]);
  });

  describe('kill (the policy\'s action for these containers only)', () => {
    let agent: RunningAgent;
    let early = '';
    before(async () => {
      // Started before the agent: its process waits, then makes the call once the list is in.
      early = newName('early');
      run(early, ['sh', '-c', '/al-attack await /tmp/go; echo "rc=$?" >/tmp/rc; sleep 300']);
      const kill = policy('kill', ['  overrides:', `    - rule: ${RULE}`, '      action: kill']);
      agent = await startAgent(['--allowlists', '--no-control-socket', '--policy', kill]);
    });
    after(async () => {
      await agent?.stop();
    });

    test('a process running since before the agent started is checked: killed at the call', async () => {
      await listLoaded(agent, early);
      exec(early, 'touch /tmp/go');
      const v = await until('the violation', () => violations(own(agent, early), 'ptrace')[0], 60_000);
      assert.equal(v.response?.layer, 'kernel');
      assert.equal(v.args['before_allowlist'], undefined);
      assert.equal(v.process.comm, 'al-attack');
      const exit = await until('its exit', () => own(agent, early).find((e) => e.kind === 'exit' && e.process.pid === v.process.pid));
      assert.equal(exit.args['signal'], 9);
      // Its next instructions never ran: no file after the call; the shell saw the kill.
      const seen = await until('the shell\'s record of the exit', () => { const o = exec(early, 'cat /tmp/rc 2>/dev/null && ls /tmp/go.after 2>&1'); return /rc=/.test(o) ? o : undefined; }, 30_000, 200);
      assert.match(seen, /rc=137\n.*No such file/, seen);
    });

    test('the call from a second thread: the whole process dies, its first thread never goes on', async () => {
      const name = await containerWithList(agent, 'thread');
      const out = exec(name, '/al-attack thread; echo "rc=$?"');
      assert.doesNotMatch(out, /MAIN AFTER/, out);
      assert.match(out, /rc=137/, out);
      const v = await until('the violation', () => violations(own(agent, name), 'ptrace')[0]);
      assert.equal(v.response?.layer, 'kernel');
    });

    test('an x32 call is outside every list: reported with its ABI and killed', async () => {
      const name = await containerWithList(agent, 'x32');
      const out = exec(name, '/al-attack x32; echo "rc=$?"');
      assert.doesNotMatch(out, /AFTER x32/, out);
      assert.match(out, /rc=137/, out);
      const v = await until('the violation', () => own(agent, name).find((e) => e.args['not_in_allowlist'] === true && e.args['abi'] === 'x32'));
      assert.equal(v.response?.layer, 'kernel');
    });

    test('a CLONE_VM|CLONE_FILES child making the call is killed, and so is the parent sharing its memory and file table, before it uses what the call made', async () => {
      const name = await containerWithList(agent, 'clone');
      const out = exec(name, '/al-attack clone-memfd; echo "rc=$?"');
      assert.doesNotMatch(out, /CHILD AFTER/, out);
      // bpf_send_signal ends the caller only; the kill reaches every process sharing its mm or
      // file table (bpf_send_signal_task), so the parent never gets the child's memfd.
      assert.doesNotMatch(out, /PARENT/, out);
      assert.match(out, /rc=137/, out);
      const v = await until('the violation', () => violations(own(agent, name), 'memfd_create')[0]);
      assert.equal(v.response?.layer, 'kernel');
    });
  });

  // The flood reaches every agent on the machine (each sees all containers): kept to 0.3 s.
  // A 4 KiB ring and an alerts-only log keep this agent's output small; the default 16 MiB
  // ring was filled the same way by a 3 s flood (1.36 M records lost, the call unreported).
  describe('report, with a ring buffer the container floods', () => {
    let agent: RunningAgent;
    before(async () => {
      agent = await startAgent(['--allowlists', '--no-control-socket', '--ring-buffer-bytes', '4096', ALERTS_ONLY_LOG]);
    });
    after(async () => {
      await agent?.stop();
    });

    test('a call whose report the full ring dropped is still reported for its container', async (t) => {
      // Three tries, each in a fresh container (a fresh list, nothing reported yet): the report
      // comes from the kernel, or, when the ring had no room for it, from the pending bitmap the
      // agent reads each second (args.reported_late). Never lost.
      for (let attempt = 1; attempt <= 3; attempt++) {
        const name = await containerWithList(agent, 'flood');
        const out = exec(name, '/al-attack flood 300');
        assert.match(out, /AFTER ptrace 0/, out);
        const reported = await until(`the ptrace report of ${name}`, () => violations(own(agent, name), 'ptrace')[0], 60_000);
        t.diagnostic(`try ${attempt}: reported ${reported.args['reported_late'] === true ? 'late (the ring was full at the call)' : 'by the kernel at the call'}`);
        assert.equal(reported.verdict.level, 'INSECURE');
      }
    });
  });
});
