// Capability checks in real containers: the de-duplication setting (first / every) and a
// check the process fails because the container lacks the capability.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderText } from '../../src/events/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { agentConfig, brief, observe } from '../helpers/observe.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

test("capabilities: every reports each check; the default 'first' one per process, capability and outcome", { skip }, async () => {
  const every = agentConfig('capture:\n  capabilities: every\n');
  const first = agentConfig('capture:\n  capabilities: first\n');
  // One chown process changes the owner of two files: CAP_CHOWN is checked once per file.
  const script = 'touch /tmp/a /tmp/b; chown 1 /tmp/a /tmp/b; true';
  const run = await observe([[NO_POLICY, '--config', every], [NO_POLICY, '--config', first], [NO_POLICY]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-capdedup' });
  assert.equal(run.exitCode, 0, run.logs);
  const [byEvery, byFirst, byDefault] = run.agents.map((a) => a.events);

  const chownChecks = (events: typeof byEvery) => events!.filter((e) => e.kind === 'capability' && e.process.comm === 'chown' && e.args['capability'] === 'CHOWN');
  const everyChecks = chownChecks(byEvery);
  assert.equal(everyChecks.length, 2, `every: ${brief(everyChecks)}`);
  assert.equal(new Set(everyChecks.map((e) => e.process.pid)).size, 1, 'both checks are made by the one chown process');
  for (const e of everyChecks) {
    assert.equal(e.args['granted'], true);
    assert.equal(e.args['cap'], '0(CAP_CHOWN)');
    assert.equal(e.ret, 0);
  }
  // Each check comes just before the call it was made for.
  const calls = byEvery!.filter((e) => e.syscall === 'fchownat' && e.process.comm === 'chown');
  assert.deepEqual(calls.map((e) => e.args['path']), ['/tmp/a', '/tmp/b']);
  assert.ok(everyChecks[0]!.seq < calls[0]!.seq && calls[0]!.seq < everyChecks[1]!.seq && everyChecks[1]!.seq < calls[1]!.seq, 'check, call, check, call');

  for (const [how, events] of [['first', byFirst!], ['default', byDefault!]] as const) {
    const checks = chownChecks(events);
    assert.equal(checks.length, 1, `${how}: ${brief(checks)}`);
    assert.equal(checks[0]!.process.pid, everyChecks[0]!.process.pid);
    assert.equal(checks[0]!.args['granted'], true);
    // Both calls are still reported: only the capability record is de-duplicated.
    assert.equal(events.filter((e) => e.syscall === 'fchownat' && e.process.comm === 'chown').length, 2, `${how}: both fchownat calls`);
  }
});

test('a capability the container lacks: chown without CAP_CHOWN is a denied check and an EPERM', { skip }, async () => {
  const script = 'touch /tmp/a; chown 1 /tmp/a; echo "chown exited $?"';
  const run = await observe([[NO_POLICY]], { image: TEST_IMAGES.bash, script, dockerArgs: ['--cap-drop', 'CHOWN'], namePrefix: 'vigil-capdeny' });
  assert.equal(run.exitCode, 0, run.logs);
  assert.match(run.logs, /chown exited 1/);
  const events = run.agents[0]!.events;
  const checks = events.filter((e) => e.kind === 'capability' && e.process.comm === 'chown' && e.args['capability'] === 'CHOWN');
  assert.equal(checks.length, 1, `CAP_CHOWN checks: ${brief(checks)}`);
  const e = checks[0]!;
  assert.equal(e.syscall, 'capable');
  assert.deepEqual(e.args, { cap: '0(CAP_CHOWN)', capability: 'CHOWN', granted: false });
  assert.equal(e.ret, -1);
  assert.equal(e.error, 'EPERM');
  assert.ok(!e.process.caps.includes('CHOWN'), `the process's effective set lacks CHOWN: ${e.process.caps.join(',')}`);
  assert.ok(e.process.caps.includes('DAC_OVERRIDE'), 'the rest of the default set is there');
  assert.deepEqual(e.process.args, ['chown', '1', '/tmp/a']);
  assert.match(renderText(e), /syscall: capable, args:cap=0\(CAP_CHOWN\) capability=CHOWN granted=false, ret: -1\(EPERM\), time: \d+\}/);
  assert.ok(!events.some((x) => x.kind === 'capability' && x.args['capability'] === 'CHOWN' && x.args['granted'] === true), 'no check of CHOWN was granted');

  const call = events.find((x) => x.syscall === 'fchownat' && x.process.comm === 'chown');
  assert.ok(call, `no fchownat: ${brief(events.filter((x) => x.kind === 'file'))}`);
  assert.equal(call.args['path'], '/tmp/a');
  assert.equal(call.args['uid'], 1);
  assert.equal(call.error, 'EPERM');
  assert.ok(e.seq < call.seq, 'the check is reported before the call that failed on it');
});

test("capabilities 'first': a program a process execs reports its first use again", { skip }, async () => {
  // One process: chroot checks CAP_SYS_CHROOT, then execs chroot, which checks it again.
  const script = 'chroot / chroot / true; true';
  const run = await observe([[NO_POLICY]], { image: TEST_IMAGES.busybox, script, namePrefix: 'vigil-capexec' });
  assert.equal(run.exitCode, 0, run.logs);
  const events = run.agents[0]!.events;
  const checks = events.filter((e) => e.kind === 'capability' && e.args['capability'] === 'SYS_CHROOT');
  assert.equal(checks.length, 2, `SYS_CHROOT checks: ${brief(checks)}`);
  assert.equal(checks[0]!.process.pid, checks[1]!.process.pid, 'one process, two programs');
  // busybox's sh runs the first chroot in a fork without exec; that chroot then execs the second.
  const exec = events.find((e) => e.kind === 'exec' && e.process.pid === checks[0]!.process.pid && e.process.args.join(' ') === 'chroot / true');
  assert.ok(exec, `the exec of the second chroot: ${brief(events.filter((e) => e.kind === 'exec'))}`);
  assert.ok(checks[0]!.seq < exec.seq && exec.seq < checks[1]!.seq, 'check, exec, check');
  assert.deepEqual(checks[1]!.process.args, ['chroot', '/', 'true']);
});
