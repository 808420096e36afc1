// Log rotation: after the file is moved away, SIGHUP makes the agent start a new file at
// the configured path. Every event is in exactly one of the two files, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { readEvents, startAgent } from '../helpers/agent-process.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('SIGHUP after a rename starts a new log file; no event is lost or written twice', { skip }, async () => {
  const agent = await startAgent([NO_POLICY]);
  const rotated = `${agent.logPath}.1`;
  const before = uniqueName('vigil-rot-a');
  const after = uniqueName('vigil-rot-b');
  let idBefore = '';
  let idAfter = '';
  try {
    idBefore = docker('run', '-d', '--pull', 'never', '--name', before, TEST_IMAGES.busybox, 'cat', '/etc/hostname');
    docker('wait', before);
    await waitFor(() => readEvents(agent.logPath).some((e) => e.container.id === idBefore && e.kind === 'exit'), 'the first container in the log');
    renameSync(agent.logPath, rotated);
    agent.child.kill('SIGHUP');
    await waitFor(() => agent.stderr().includes('reopened the output files'), 'the reopen');
    idAfter = docker('run', '-d', '--pull', 'never', '--name', after, TEST_IMAGES.busybox, 'cat', '/etc/hostname');
    docker('wait', after);
  } finally {
    docker('rm', '-f', before, after);
  }
  const { code, events: fresh } = await agent.stop();
  assert.equal(code, 0, agent.stderr());
  const old = readEvents(rotated);
  assert.ok(old.some((e) => e.container.id === idBefore && e.kind === 'exec'), 'the first container is in the rotated file');
  assert.ok(!old.some((e) => e.container.id === idAfter), 'nothing of the second container went to the rotated file');
  assert.ok(fresh.some((e) => e.container.id === idAfter && e.kind === 'exec'), 'the second container is in the new file');
  const seqs = [...old, ...fresh].map((e) => e.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'sequence numbers run on across the two files without a gap or repeat');
});
