// rename and link carry two names, each relative to its own directory. The kernel side
// used to read one directory only, the first name's: a new name relative to the working
// directory after an absolute old one (`cd /bin && mv /tmp/x x`), or relative to another
// directory fd (renameat(fd of /tmp, x, fd of /etc, y)), got no new_path, and the rules on
// where a file lands (below /bin, /etc/cron.d, /etc/ld.so.preload) could not see it. The
// second name's own directory is now read when it is needed (base2 in the record).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VigilEvent } from '../../src/events/index.js';
import { missingForContainerTests, missingWorkloadImages, WORKLOAD_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

const skip = missingForContainerTests() ?? missingWorkloadImages();

// Each step prints ok:NAME once its call succeeded. renameat2 (316) and linkat with two
// directory fds go through ctypes: Python's os.rename and os.link pick the call themselves.
const SCRIPT = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def mk(p): open(p, "w").close()
mk("/tmp/e1"); os.chdir("/bin"); os.rename("/tmp/e1", "vigil-e1"); print("ok:rename_abs_rel")
mk("/tmp/e2"); os.link("/tmp/e2", "vigil-e2"); print("ok:link_abs_rel")
t = os.open("/tmp", os.O_RDONLY); e = os.open("/etc", os.O_RDONLY)
mk("/tmp/e3"); os.rename("e3", "vigil-e3", src_dir_fd=t, dst_dir_fd=e); print("ok:renameat_two_fds")
mk("/tmp/e4"); assert libc.linkat(t, b"e4", e, b"vigil-e4", 0) == 0; print("ok:linkat_two_fds")
mk("/tmp/e5"); assert libc.syscall(316, t, b"e5", e, b"vigil-e5", 0) == 0; print("ok:renameat2_two_fds")
os.chdir("/tmp"); mk("/tmp/e6"); assert libc.syscall(316, -100, b"e6", e, b"vigil-e6", 0) == 0; print("ok:renameat2_cwd_fd")
mk("/tmp/e7"); os.rename("e7", "e7b", src_dir_fd=t, dst_dir_fd=t); print("ok:renameat_same_fd")
`;

test('a rename or link whose new name is relative to its own directory gets new_path', { skip }, async () => {
  const r = await observe([['--no-default-policy']], {
    image: WORKLOAD_IMAGES.python,
    script: `python3 -c '${SCRIPT}'`,
    dockerArgs: ['--network', 'none'],
    namePrefix: 'vigil-second-path',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const calls = (r.agents[0]?.events ?? []).filter((e) => e.container.id === r.id && /^(rename|link)/.test(e.syscall) && e.ret === 0);
  const byNew = (name: string): VigilEvent => {
    const e = calls.find((c) => c.args['newname'] === name);
    assert.ok(e, `no successful rename or link to ${name}: ${brief(calls)}\n${r.logs}`);
    return e;
  };
  const cases: Array<[newname: string, path: string, newPath: string]> = [
    ['vigil-e1', '/tmp/e1', '/bin/vigil-e1'],
    ['vigil-e2', '/tmp/e2', '/bin/vigil-e2'],
    ['vigil-e3', '/tmp/e3', '/etc/vigil-e3'],
    ['vigil-e4', '/tmp/e4', '/etc/vigil-e4'],
    ['vigil-e5', '/tmp/e5', '/etc/vigil-e5'],
    ['vigil-e6', '/tmp/e6', '/etc/vigil-e6'],
    ['e7b', '/tmp/e7', '/tmp/e7b'],
  ];
  for (const [newname, path, newPath] of cases) {
    const e = byNew(newname);
    assert.equal(e.args['path'], path, `${e.syscall} ${JSON.stringify(e.args)}`);
    assert.equal(e.args['new_path'], newPath, `${e.syscall} ${JSON.stringify(e.args)}`);
  }
  assert.equal(byNew('vigil-e5').syscall, 'renameat2');
  assert.equal(byNew('vigil-e4').syscall, 'linkat');
});
