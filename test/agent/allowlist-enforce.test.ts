// Image allow-lists checked in the kernel (vigil agent --allowlists; bpf/allowlist.h): a
// program copied into a busybox container at run time makes a system call busybox's list
// does not have (ptrace: Docker's default profile allows it on this kernel, unlike keyctl
// or mount, which seccomp refuses before sys_enter). Reported from the kernel, once per
// container and call; with the policy's kill the process dies at the call and its next
// write never happens; with --dry-run it goes on and the log says what would have been
// done; under the seccomp profile `vigil analyze --seccomp` exports the call fails (EPERM).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { LogTail, runVigil, startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { until } from '../helpers/wait.js';
import type { VigilEvent } from '../../src/events/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '..', '..', '..', 'test', 'agent', 'fixtures', 'off-list.c');
const skip = missingForContainerTests() ?? (spawnSync('cc', ['--version']).status === 0 ? undefined : 'no C compiler (cc) to build the fixture');
const RULE = 'syscall not in allow-list';
const dir = mkdtempSync(join(tmpdir(), 'vigil-allowlist-'));
const fixture = join(dir, 'off-list');
const evasion = join(dir, 'evasion');
const uring = join(dir, 'uring-ops');
// Every container of this file is named so; the policies act on these only.
const PREFIX = `vigil-al-${process.pid}`;

function policy(name: string, body: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', `  name: ${name}`, 'spec:', '  selector:', `    name: ["${PREFIX}-*"]`, ...body, ''].join('\n'));
  return path;
}
const killPolicy = () => policy('kill', ['  overrides:', `    - rule: ${RULE}`, '      action: kill']);

/** Starts a long-lived busybox container with the fixture mounted, and waits for the agent to have loaded its list. */
async function containerWithList(agent: RunningAgent, tag: string, extra: string[] = []): Promise<string> {
  const name = `${PREFIX}-${tag}-${Math.random().toString(36).slice(2, 6)}`;
  docker('run', '-d', '--rm', '--pull', 'never', '--name', name, '-v', `${fixture}:/off-list:ro`, ...extra, TEST_IMAGES.busybox, 'sleep', '300');
  await until(`the allow-list of ${name} loaded`, () => agent.stderr().includes(`loaded for ${name}:`) || agent.stderr().match(new RegExp(`not checked for ${name} .*`))?.[0], 60_000, 100);
  assert.ok(agent.stderr().includes(`loaded for ${name}:`), agent.stderr().split('\n').filter((l) => l.includes(name)).join('\n'));
  return name;
}

function exec(name: string, script: string): { out: string; code: number | null } {
  const r = spawnSync('docker', ['exec', name, 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { out: (r.stdout ?? '') + (r.stderr ?? ''), code: r.status };
}

// One tail per agent, keeping this file's containers' lines only.
const tails = new WeakMap<RunningAgent, LogTail>();
function own(agent: RunningAgent, name: string): VigilEvent[] {
  let t = tails.get(agent);
  if (!t) tails.set(agent, (t = new LogTail(agent.logPath, (l) => l.includes(`"name":"${PREFIX}`))));
  return t.events().filter((e) => e.container.name === name);
}
const violations = (es: VigilEvent[], call: string) => es.filter((e) => e.args['not_in_allowlist'] === true && e.syscall === call);

describe('image allow-lists in the kernel', { skip }, () => {
  before(() => {
    mkdirSync(dir, { recursive: true });
    execFileSync('cc', ['-O2', '-static', '-o', fixture, source]);
    // int 0x80 needs its data below 4 GiB: static and non-PIE.
    execFileSync('cc', ['-O2', '-static', '-no-pie', '-pthread', '-o', evasion, resolve(dirname(source), 'evasion.c')]);
    execFileSync('cc', ['-O2', '-static', '-o', uring, resolve(dirname(source), 'uring-ops.c')]);
  });
  after(() => {
    for (const n of docker('ps', '-aq', '--filter', `name=${PREFIX}`).split('\n').filter(Boolean)) spawnSync('docker', ['rm', '-f', n]);
  });

  describe('reporting (the rule\'s default action)', () => {
    let agent: RunningAgent;
    before(async () => {
      agent = await startAgent(['--allowlists', '--no-control-socket']);
    });
    after(async () => {
      await agent?.stop();
    });

    test('a call outside the list is INSECURE, from the kernel, once per container and call; the program goes on', async () => {
      const name = await containerWithList(agent, 'report');
      const loaded = await until('the allow-list entry', () => own(agent, name).find((e) => e.kind === 'agent' && e.syscall === 'allowlist'));
      assert.equal(loaded.args['state'], 'loaded');
      assert.ok(Number(loaded.args['size']) > 50 && Number(loaded.args['size']) < 300, JSON.stringify(loaded.args));
      assert.equal(loaded.args['enforce'], 'report');
      for (let i = 0; i < 3; i++) {
        const r = exec(name, '/off-list ptrace; echo "rc=$?"');
        assert.match(r.out, /AFTER ptrace 0\nrc=0/, r.out);
      }
      const [v] = await until('the ptrace violation', () => {
        const vs = violations(own(agent, name), 'ptrace');
        return vs.length > 0 ? vs : undefined;
      });
      assert.ok(v);
      assert.equal(v.verdict.level, 'INSECURE');
      assert.deepEqual(v.verdict.rules, [RULE]);
      assert.equal(v.process.comm, 'off-list');
      assert.equal(v.process.exe, '/off-list');
      assert.equal(v.args['nr'], 101);
      assert.equal(v.args['before_allowlist'], undefined, 'the list was in before the call');
      assert.equal(v.response, undefined, 'alert only: nothing done');
      // Three runs, one report: the kernel remembers what it reported for the container.
      const exits = await until('the three processes\' exits', () => {
        const xs = own(agent, name).filter((e) => e.kind === 'exit' && e.process.comm === 'off-list');
        return xs.length >= 3 ? xs : undefined;
      });
      assert.equal(exits.length, 3);
      assert.equal(violations(own(agent, name), 'ptrace').length, 1);
      // The calls busybox's own programs make are in the list: none of them is reported.
      exec(name, 'ls / >/dev/null; cat /etc/hostname >/dev/null; wc -l /etc/passwd >/dev/null');
      const others = own(agent, name).filter((e) => e.args['not_in_allowlist'] === true && e.syscall !== 'ptrace');
      assert.deepEqual(others.map((e) => `${e.process.comm}:${e.syscall}`), []);
    });

    test('an image the analysis cannot close (a computed system-call number) is reported as not checked, never silently', async () => {
      const root = mkdtempSync(join(tmpdir(), 'vigil-unresolved-'));
      execFileSync('cc', ['-O2', '-static', '-o', join(root, 'computed'), resolve(dirname(source), 'computed-syscall.c')]);
      const image = `vigil-test/unresolved-${process.pid}:1`;
      execFileSync('sh', ['-c', `tar -C ${root} -c computed | docker import --change 'CMD ["/computed"]' - ${image}`]);
      const name = uniqueName(`${PREFIX}-unresolved`);
      try {
        docker('run', '-d', '--rm', '--pull', 'never', '--name', name, image);
        const entry = await until('the allow-list entry', () => own(agent, name).find((e) => e.kind === 'agent' && e.syscall === 'allowlist'), 60_000);
        assert.equal(entry.args['state'], 'unchecked');
        assert.match(String(entry.args['reason']), /unresolved/);
        // stderr says it too (a pipe: it may arrive after the log line).
        await until('the stderr line', () => new RegExp(`allow-list not checked for ${name} .*unresolved`).test(agent.stderr()), 10_000);
      } finally {
        spawnSync('docker', ['rm', '-f', name]);
        spawnSync('docker', ['rmi', '-f', image]);
      }
    });

    test('the text output names the call in the verdict', async () => {
      const name = await containerWithList(agent, 'text');
      exec(name, '/off-list ptrace');
      const v = await until('the violation', () => violations(own(agent, name), 'ptrace')[0]);
      const { renderText } = await import('../../src/events/index.js');
      assert.match(renderText(v), /\[INSECURE\] Unsafe:\[syscall not in allow-list: ptrace\], Event:\{host:[^,]+, syscall: ptrace,/);
    });
  });

  describe('kill', () => {
    let agent: RunningAgent;
    before(async () => {
      agent = await startAgent(['--allowlists', '--no-control-socket', '--policy', killPolicy()]);
    });
    after(async () => {
      await agent?.stop();
    });

    test('the process dies at the call: its next write and file never happen; the event says the kernel killed it', async () => {
      const name = await containerWithList(agent, 'kill');
      const r = exec(name, '/off-list ptrace /tmp/after; echo "rc=$?"; ls /tmp/after 2>&1');
      assert.doesNotMatch(r.out, /AFTER/, 'no instruction after the call ran');
      assert.match(r.out, /rc=137/, r.out);
      assert.match(r.out, /No such file/, 'the file it would create next was not made');
      const v = await until('the violation', () => violations(own(agent, name), 'ptrace')[0]);
      assert.equal(v.verdict.action, 'kill');
      assert.equal(v.response?.layer, 'kernel');
      assert.equal(v.response?.outcome, 'done');
      assert.equal(v.response?.rule, RULE);
      const exit = await until('its exit', () => own(agent, name).find((e) => e.kind === 'exit' && e.process.pid === v.process.pid));
      assert.equal(exit.args['signal'], 9);
      const record = await until('the response record', () => own(agent, name).find((e) => e.kind === 'response' && e.args['trigger_seq'] === v.seq));
      assert.equal(record.args['layer'], 'kernel');
      // Every call outside the list is killed, not only the first.
      const again = exec(name, '/off-list ptrace; echo "rc=$?"');
      assert.match(again.out, /rc=137/, again.out);
    });

    test('the ways around a system-call monitor are outside every list: a 32-bit int 0x80 call, io_uring_setup', async () => {
      const name = await containerWithList(agent, 'around', ['-v', `${evasion}:/evasion:ro`, '-v', `${uring}:/uring-ops:ro`]);
      const i386 = exec(name, '/evasion int80-open /etc/hostname; echo "rc=$?"');
      assert.doesNotMatch(i386.out, /int80 open/, i386.out);
      assert.match(i386.out, /rc=137/, i386.out);
      const ring = exec(name, '/uring-ops open /etc/hostname; echo "rc=$?"');
      assert.doesNotMatch(ring.out, /->/, 'no request was submitted through a ring');
      assert.match(ring.out, /rc=137/, ring.out);
      const es = await until('both reports', () => {
        const x = own(agent, name);
        return violations(x, 'open').length > 0 && violations(x, 'io_uring_setup').length > 0 ? x : undefined;
      });
      const [open32] = violations(es, 'open');
      assert.equal(open32?.args['abi'], 'i386');
      assert.equal(open32?.response?.layer, 'kernel');
      assert.equal(violations(es, 'io_uring_setup')[0]?.response?.layer, 'kernel');
    });
  });

  // Each with an agent of its own: no other agent with a kill policy may be running.
  describe('policy: additions and the rule off', () => {

    test('spec.allowlist.add: a call the policy adds for these containers is allowed', async () => {
      const added = policy('add', ['  allowlist:', '    add: [ptrace]']);
      const a2 = await startAgent(['--allowlists', '--no-control-socket', '--policy', killPolicy(), '--policy', added]);
      try {
        const name = await containerWithList(a2, 'add');
        const r = exec(name, '/off-list ptrace; echo "rc=$?"');
        assert.match(r.out, /AFTER ptrace 0\nrc=0/, r.out);
        const loaded = own(a2, name).find((e) => e.kind === 'agent' && e.syscall === 'allowlist');
        assert.deepEqual(loaded?.args['added'], ['ptrace']);
      } finally {
        await a2.stop();
      }
    });

    test('the rule turned off for a container: its list is not loaded, and the log says so', async () => {
      const off = policy('off', ['  overrides:', `    - rule: ${RULE}`, '      enabled: false']);
      const a3 = await startAgent(['--allowlists', '--no-control-socket', '--policy', killPolicy(), '--policy', off]);
      try {
        const name = `${PREFIX}-off-${Math.random().toString(36).slice(2, 6)}`;
        docker('run', '-d', '--rm', '--pull', 'never', '--name', name, '-v', `${fixture}:/off-list:ro`, TEST_IMAGES.busybox, 'sleep', '300');
        const entry = await until('the allow-list entry', () => own(a3, name).find((e) => e.kind === 'agent' && e.syscall === 'allowlist'), 60_000);
        assert.equal(entry.args['state'], 'off');
        const r = exec(name, '/off-list ptrace; echo "rc=$?"');
        assert.match(r.out, /rc=0/, r.out);
      } finally {
        await a3.stop();
      }
    });
  });

  test('--dry-run with kill: the process goes on and the log says the kill would have happened', async () => {
    const agent = await startAgent(['--allowlists', '--no-control-socket', '--dry-run', '--policy', killPolicy()]);
    try {
      const name = await containerWithList(agent, 'dry');
      const r = exec(name, '/off-list ptrace; echo "rc=$?"');
      assert.match(r.out, /AFTER ptrace 0\nrc=0/, r.out);
      const v = await until('the violation', () => violations(own(agent, name), 'ptrace')[0]);
      assert.equal(v.verdict.action, 'kill');
      assert.equal(v.response?.outcome, 'would', JSON.stringify(v.response));
      assert.notEqual(v.response?.layer, 'kernel');
    } finally {
      await agent.stop();
    }
  });

  test('the start race: a call made before the list was loaded is reported once the list is in, never missed', async () => {
    const agent = await startAgent(['--allowlists', '--no-control-socket']);
    try {
      // The container's first program makes the call at once: the list may or may not be in yet.
      const name = uniqueName(`${PREFIX}-race`);
      const r = spawnSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, '-v', `${fixture}:/off-list:ro`, TEST_IMAGES.busybox, '/off-list', 'ptrace'], { encoding: 'utf8', timeout: 60_000 });
      assert.match(r.stdout, /AFTER ptrace/, r.stdout + r.stderr);
      const v = await until('the ptrace report', () => violations(own(agent, name), 'ptrace')[0], 60_000);
      assert.equal(v.verdict.level, 'INSECURE');
      // From the kernel (the list was in) or from the agent (it ran before): exactly one.
      assert.equal(violations(own(agent, name), 'ptrace').length, 1);
      if (v.args['before_allowlist'] === true) assert.equal(v.process.pid, 0, 'the agent does not know which process made it');
    } finally {
      await agent.stop();
    }
  });

  test('under the profile `vigil analyze --seccomp` exports, the call itself fails with EPERM', async () => {
    const profile = join(dir, 'busybox-seccomp.json');
    const a = await runVigil(['analyze', TEST_IMAGES.busybox, '--seccomp', profile], 120_000);
    assert.equal(a.code, 0, a.stderr);
    assert.ok(existsSync(profile));
    const name = uniqueName(`${PREFIX}-seccomp`);
    const r = spawnSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, '--security-opt', `seccomp=${profile}`, '-v', `${fixture}:/off-list:ro`,
      TEST_IMAGES.busybox, 'sh', '-c', '/off-list ptrace; echo "rc=$?"'], { encoding: 'utf8', timeout: 60_000 });
    // syscall() returns -1 with errno EPERM: the program goes on, the call did nothing.
    assert.match(r.stdout, /AFTER ptrace -1\nrc=0/, r.stdout + r.stderr);
  });
});
