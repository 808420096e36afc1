// A process whose thread-group leader exited first (pthread_exit in main) lives on under
// the leader's pid. Its later events must keep the program's exe and args, and its exit
// be reported once, when the last thread has gone: an exit reported at the leader's exit
// made the table forget the process, and the fallback to /proc found a zombie leader
// (no exe, no cmdline).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'leader-exit.c');
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture');

test('a process whose leader exited first keeps its exe and args, and exits once, after its last thread', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-leader-'));
  chmodSync(dir, 0o755);
  const fixture = join(dir, 'leader-exit');
  execFileSync('cc', ['-O2', '-static', '-pthread', '-o', fixture, source]);
  const r = await observe([[]], {
    image: TEST_IMAGES.busybox,
    script: '/leader /etc/shadow && /leader /etc/passwd /bin/cat /etc/hostname',
    dockerArgs: ['-v', `${fixture}:/leader:ro`],
    namePrefix: 'vigil-leader',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const events = r.agents[0]?.events ?? [];
  const open = events.find((e) => e.kind === 'file' && e.args['path'] === '/etc/shadow');
  assert.ok(open, `the remaining thread's open is reported: ${brief(events)}`);
  assert.notEqual(open.process.pid, 0);
  assert.equal(open.process.exe, '/leader', JSON.stringify(open.process));
  assert.deepEqual(open.process.args, ['/leader', '/etc/shadow']);
  const exits = events.filter((e) => e.kind === 'exit' && e.process.pid === open.process.pid);
  assert.equal(exits.length, 1, `one exit for the process: ${brief(exits)}`);
  assert.ok((exits[0]?.seq ?? 0) > open.seq, 'reported after the last thread acted');
  assert.equal(exits[0]?.process.exe, '/leader');
  // The second one execs from the remaining thread: the exec names the new program, and
  // the open before it still names the old one.
  const passwd = events.find((e) => e.kind === 'file' && e.args['path'] === '/etc/passwd');
  assert.ok(passwd, brief(events));
  assert.equal(passwd.process.exe, '/leader');
  assert.deepEqual(passwd.process.args, ['/leader', '/etc/passwd', '/bin/cat', '/etc/hostname']);
  const cat = events.find((e) => e.kind === 'exec' && e.process.pid === passwd.process.pid && e.args['filename'] === '/bin/cat');
  assert.ok(cat, brief(events));
  assert.deepEqual(cat.process.args, ['/bin/cat', '/etc/hostname']);
  const catExits = events.filter((e) => e.kind === 'exit' && e.process.pid === passwd.process.pid);
  assert.equal(catExits.length, 1, brief(catExits));
  assert.deepEqual(catExits[0]?.process.args, ['/bin/cat', '/etc/hostname']);
});
