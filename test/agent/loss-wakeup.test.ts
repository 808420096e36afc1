// The kernel wakes the agent's reader only once a batch's worth of records is unread
// (vigil_submit, --wakeup-bytes); below that mark the reader picks records up on its
// poll timer. A quiet container's few records must therefore still arrive while it runs,
// not when something else fills the ring or the agent stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { readEvents, startAgent } from '../helpers/agent-process.js';

const skip = missingForContainerTests();

for (const [what, args] of [['the default wakeup mark', []], ['a mark no quiet container reaches (1 GiB)', ['--wakeup-bytes', String(1 << 30)]]] as const) {
  test(`one open from a quiet container arrives while it still runs, with ${what}`, { skip, timeout: 180_000 }, async () => {
    const agent = await startAgent(['--no-default-policy', ...args]);
    const name = uniqueName('vigil-quiet');
    try {
      // One watched open, then the container idles: nothing more of it fills the ring.
      const id = docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sh', '-c', 'cat /etc/hostname > /dev/null; exec sleep 600');
      const deadline = Date.now() + 120_000;
      let seen = false;
      while (!seen && Date.now() < deadline) {
        seen = readEvents(agent.logPath).some((e) => e.container.id === id && e.args['path'] === '/etc/hostname');
        if (!seen) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(seen, 'the open was written while the container ran (the reader did not wait for a wakeup)');
      assert.equal(docker('inspect', '-f', '{{.State.Running}}', name), 'true', 'and the container was still running');
    } finally {
      docker('rm', '-f', name);
      await agent.stop();
      rmSync(dirname(agent.logPath), { recursive: true, force: true });
    }
  });
}
