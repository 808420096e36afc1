// Process life cycle in real containers: fork events with the child's pids, exit events
// with exit codes and signals, and argv cut at its bound (VIGIL_ARGS_MAX in bpf/events.h).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderText } from '../../src/events/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

/** bpf/events.h VIGIL_ARGS_MAX: bytes of argv an exec record carries. */
const ARGS_MAX = 2048;

test('fork and exit: a subshell is a fork with the child pids, then its exit code; a signal and the init exit code too', { skip }, async () => {
  // (exit 3) forks a subshell that never execs; the inner sh kills itself with SIGKILL.
  const script = '(exit 3); sh -c "kill -9 \\$\\$"; exit 7';
  const run = await observe([[NO_POLICY]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-fork' });
  assert.equal(run.exitCode, 7, run.logs);
  const events = run.agents[0]!.events;
  const life = events.filter((e) => e.kind === 'fork' || e.kind === 'exit' || e.kind === 'exec');

  const init = events.find((e) => e.kind === 'exec' && e.process.nsPid === 1);
  assert.ok(init, `no exec of the container init: ${brief(life)}`);
  assert.deepEqual(init.process.args, ['sh', '-c', script]);
  const forks = events.filter((e) => e.kind === 'fork' && e.process.pid === init.process.pid);
  assert.equal(forks.length, 2, `forks of the init: ${brief(forks)}`);

  // The subshell: a fork event carrying the child, then the child's exit with code 3.
  const sub = forks[0]!;
  assert.equal(sub.syscall, 'fork');
  assert.equal(sub.process.nsPid, 1);
  const childPid = sub.args['child_pid'];
  const childNsPid = sub.args['child_ns_pid'];
  assert.equal(typeof childPid, 'number');
  assert.equal(typeof childNsPid, 'number');
  assert.notEqual(childPid, childNsPid, 'host pid and in-container pid differ');
  assert.ok((childNsPid as number) > 1);
  assert.equal(sub.ret, childPid, 'a fork returns the child pid');
  const subExit = events.find((e) => e.kind === 'exit' && e.process.pid === childPid);
  assert.ok(subExit, `no exit of the subshell ${childPid}: ${brief(life)}`);
  assert.deepEqual(subExit.args, { code: 3, signal: 0 });
  assert.equal(subExit.ret, null);
  assert.equal(subExit.process.nsPid, childNsPid);
  assert.equal(subExit.process.ppid, init.process.pid);
  assert.equal(subExit.process.parent, 'sh');
  assert.deepEqual(subExit.process.args, init.process.args, 'a child that did not exec has its parent argv');
  assert.ok(sub.seq < subExit.seq);
  assert.match(renderText(sub), /syscall: fork, args:child_pid=\d+ child_ns_pid=\d+, ret: \d+, time: \d+\}/);
  assert.match(renderText(subExit), /syscall: exit, args:code=3 signal=0, time: \d+\}/);

  // The second child execs sh and is killed by SIGKILL: signal 9, no exit code.
  const killedPid = forks[1]!.args['child_pid'];
  const killedExec = events.find((e) => e.kind === 'exec' && e.process.pid === killedPid);
  assert.ok(killedExec, 'no exec of the inner sh');
  assert.deepEqual(killedExec.process.args, ['sh', '-c', 'kill -9 $$']);
  const killed = events.find((e) => e.kind === 'exit' && e.process.pid === killedPid);
  assert.ok(killed, `no exit of the killed sh: ${brief(life)}`);
  assert.deepEqual(killed.args, { code: 0, signal: 9 });
  assert.deepEqual(killed.process.args, ['sh', '-c', 'kill -9 $$']);

  // The init exits last, with 7.
  const initExit = events.find((e) => e.kind === 'exit' && e.process.pid === init.process.pid);
  assert.ok(initExit, 'no exit of the init');
  assert.deepEqual(initExit.args, { code: 7, signal: 0 });
  assert.equal(initExit.process.nsPid, 1);
  assert.equal(life[life.length - 1], initExit, 'the init exit is the last life-cycle event');
});

test(`argv beyond ${ARGS_MAX} bytes is cut and marked argsTruncated; at the bound and below it is whole`, { skip }, async () => {
  // "/bin/echo\0" is 10 bytes: 2037 more characters and a NUL make exactly ARGS_MAX.
  const atBound = '0'.repeat(ARGS_MAX - 10 - 1);
  const script = [
    `a=$(printf %0${atBound.length}d 0)`,
    '/bin/echo "$a" >/dev/null',
    '/bin/echo "${a}1" >/dev/null',
    '/bin/echo "$(printf %03000d 0)" >/dev/null',
    '/bin/echo short >/dev/null',
    'true',
  ].join('; ');
  const run = await observe([[NO_POLICY]], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-argv' });
  assert.equal(run.exitCode, 0, run.logs);
  const echoes = run.agents[0]!.events.filter((e) => e.kind === 'exec' && e.args['filename'] === '/bin/echo');
  assert.equal(echoes.length, 4, `echo execs: ${JSON.stringify(echoes.map((e) => e.process.args.map((a) => a.length)))}`);
  const [bound, oneOver, long, short] = echoes as [typeof echoes[0], typeof echoes[0], typeof echoes[0], typeof echoes[0]];

  // Exactly ARGS_MAX bytes: whole, not marked.
  assert.equal(bound.process.argsTruncated, false);
  assert.deepEqual(bound.process.args, ['/bin/echo', atBound]);
  assert.deepEqual(bound.args['argv'], ['/bin/echo', atBound]);

  // One byte over: the final NUL is what is cut; marked.
  assert.equal(oneOver.process.argsTruncated, true);
  assert.deepEqual(oneOver.process.args, ['/bin/echo', `${atBound}1`]);

  // 3000 characters: cut to the bound, marked, and rendered with the cut shown.
  assert.equal(long.process.argsTruncated, true);
  assert.deepEqual(long.process.args, ['/bin/echo', '0'.repeat(ARGS_MAX - 10)]);
  assert.deepEqual(long.args['argv'], long.process.args);
  assert.equal(long.process.args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0) - 1, ARGS_MAX, 'ARGS_MAX bytes carried');
  assert.match(renderText(long), new RegExp(`args: /bin/echo 0{${ARGS_MAX - 10}}…, caps: `));

  // A short argv: whole, not marked.
  assert.equal(short.process.argsTruncated, false);
  assert.deepEqual(short.process.args, ['/bin/echo', 'short']);
  assert.match(renderText(short), /args: \/bin\/echo short, caps: /);
});
