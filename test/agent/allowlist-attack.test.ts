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

    test('a CLONE_VM|CLONE_FILES child making the call is reported and killed', async () => {
      const name = await containerWithList(agent, 'clone');
      const out = exec(name, '/al-attack clone-memfd; echo "rc=$?"');
      assert.doesNotMatch(out, /CHILD AFTER/, out);
      assert.match(out, /PARENT AFTER CHILD signal=9/, out);
      const v = await until('the violation', () => violations(own(agent, name), 'memfd_create')[0]);
      assert.equal(v.response?.layer, 'kernel');
    });

    test('the parent sharing that child\'s memory and file table is stopped too, before it uses what the call made', {
      todo: 'hole: bpf_send_signal kills the caller\'s thread group only; a parent sharing its mm and fd table (clone CLONE_VM|CLONE_FILES without CLONE_THREAD) '
        + 'goes on and uses the memfd the killed child created (fix: at a kill, also signal the tasks sharing current->mm / current->files, e.g. walk real_parent '
        + 'while it shares them and bpf_send_signal_task each, or refuse such clones under kill)',
    }, async () => {
      const name = await containerWithList(agent, 'clone2');
      const out = exec(name, '/al-attack clone-memfd; echo "rc=$?"');
      await until('the violation', () => violations(own(agent, name), 'memfd_create')[0]);
      assert.doesNotMatch(out, /PARENT USES THE CHILD'S MEMFD/, out);
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

    test('a call whose report the full ring dropped is still reported for its container', {
      todo: 'hole: when bpf_ringbuf_output fails the reported bit is cleared and the loss counted per CPU and kind only; a program that makes the call '
        + 'once, while its other threads flood the ring with NORMAL prctl records, is never named (the agent writes an unattributed `lost` entry). Fix: on failure set the bit in a per-container '
        + '"missed" bitmap (like vigil_allow_pending) that the agent drains each second and reports as the same INSECURE event with args.report_lost',
    }, async (t) => {
      const lostSoFar = () => tail(agent).events().filter((e) => e.kind === 'lost').reduce((n, e) => n + Number(e.args['lost'] ?? 0), 0);
      // The flood must fill the ring at the moment of the call, which it may not: three tries,
      // each in a fresh container (a fresh list, nothing reported yet); every one must be reported.
      for (let attempt = 1; attempt <= 3; attempt++) {
        const name = await containerWithList(agent, 'flood');
        const before = lostSoFar();
        const out = exec(name, '/al-attack flood 300');
        assert.match(out, /AFTER ptrace 0/, out);
        const reported = await until('the ptrace report', () => violations(own(agent, name), 'ptrace')[0], 15_000).catch(() => undefined);
        // The agent tells losses once a second, with no container: wait for this try's.
        await new Promise((r) => setTimeout(r, 1500));
        const lost = lostSoFar() - before;
        t.diagnostic(`try ${attempt}: ${lost} records lost in the kernel; ptrace reported: ${reported !== undefined}`);
        // Reported, or nothing lost: the ring had room at the call this time; try again.
        assert.ok(reported || lost === 0, `${name}'s ptrace was never reported; the agent only wrote unattributed lost entries (${lost} records)`);
      }
    });
  });
});
