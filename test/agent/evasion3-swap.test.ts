// A name swapped while the call runs, and swapped back before it returns: the name read
// at entry and at exit is the decoy, the kernel acted on the target. truncate, like chmod
// and chown, names the inode whose change time it changed (kernel_name): a successful
// truncate of the target cannot be logged as one of the decoy unmarked. (unlink, rename,
// link, mkdir and mount have no such inode to name: see docs/coverage.md.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VigilEvent } from '../../src/events/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { observe } from '../helpers/observe.js';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'swap-race.c');
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture');

let built: string | undefined;
function fixture(): string {
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-swap-'));
    chmodSync(dir, 0o755);
    built = join(dir, 'swap-race');
    execFileSync('cc', ['-O2', '-static', '-pthread', '-o', built, source]);
  }
  return built;
}

// A bind-mounted file (/etc/hostname: the last component is compared) and one of the
// image (/etc/passwd, on the container's root file system: the whole path is compared).
for (const [target, decoy] of [['/etc/hostname', '/tmp/innocent'], ['/etc/passwd', '/tmp/passwd']] as const) {
  test(`a thread swapping the name during truncate cannot make a successful truncate of ${target} name ${decoy}`, { skip }, async () => {
    const r = await observe([['--no-default-policy']], {
      image: TEST_IMAGES.busybox,
      script: `/swap-race truncate 20000 ${target} ${decoy}`,
      dockerArgs: ['-v', `${fixture()}:/swap-race:ro`],
      namePrefix: 'vigil-swap',
    });
    assert.equal(r.exitCode, 0, r.logs);
    const mine = r.agents[0]!.events.filter((e) => e.process.exe === '/swap-race');
    const ok = mine.filter((e) => e.syscall === 'truncate' && e.ret === 0);
    assert.ok(ok.length > 0, `no successful truncate reported: ${r.logs}`);
    // The decoy does not exist: every successful truncate was of the target.
    const lies = ok.filter((e) => e.args['path'] !== target && e.args['args_changed'] !== true);
    assert.deepEqual(lies.slice(0, 5).map((e) => e.args), [], `${lies.length} of ${ok.length} successful truncates name another file, unmarked`);
    const kernelName = (e: VigilEvent) => String(e.args['kernel_name'] ?? e.args['path']);
    for (const e of ok) assert.equal(kernelName(e).split('/').pop(), target.split('/').pop(), JSON.stringify(e.args));
    if (target === '/etc/passwd') for (const e of ok) assert.equal(kernelName(e), target, JSON.stringify(e.args));
    // A truncate the race did not touch is not marked.
    assert.ok(ok.some((e) => e.args['path'] === target && e.args['args_changed'] === undefined), 'not every truncate is marked');
  });
}
