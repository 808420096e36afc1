// Programs that need a tracepoint younger than the oldest kernel vigil runs on
// (cap_capable came with Linux 6.14): without it the agent runs on and says what it
// cannot see, instead of failing to load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelHasTracepoint } from '../../src/sensor/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe, tempDir } from '../helpers/observe.js';

// The event stream on its own: no rules (their pushdown would widen what the kernel sends).
const NO_POLICY = '--no-default-policy';

const skip = missingForContainerTests();

/** A copy of this kernel's BTF in which the cap_capable tracepoint's typedef has another name. */
function btfWithoutCapCapable(): string {
  const btf = readFileSync('/sys/kernel/btf/vmlinux');
  const name = Buffer.from('btf_trace_cap_capable\0');
  const at = btf.indexOf(name);
  assert.ok(at > 0, "this kernel's BTF names btf_trace_cap_capable");
  // Same length, so every offset in the string table stays valid.
  Buffer.from('btf_trace_cap_capablX').copy(btf, at);
  const path = join(tempDir('vigil-btf'), 'vmlinux-no-cap-capable');
  writeFileSync(path, btf);
  return path;
}

test('kernelHasTracepoint reads the BTF: this kernel has cap_capable and sched_process_exec, not a made-up one', { skip }, () => {
  assert.equal(kernelHasTracepoint('cap_capable'), true);
  assert.equal(kernelHasTracepoint('sched_process_exec'), true);
  assert.equal(kernelHasTracepoint('vigil_no_such_tracepoint'), false);
  assert.equal(kernelHasTracepoint('cap_capable', btfWithoutCapCapable()), false);
});

test('a kernel without the cap_capable tracepoint: the agent says capability checks are not observed and watches the rest', { skip }, async () => {
  const run = await observe([[NO_POLICY, '--btf', btfWithoutCapCapable()]], { image: TEST_IMAGES.bash, script: 'touch /tmp/a; chown 1 /tmp/a; true', namePrefix: 'vigil-nocap' });
  assert.equal(run.exitCode, 0, run.logs);
  const agent = run.agents[0]!;
  assert.match(agent.stderr, /vigil agent: capability checks are not observed: this kernel has no cap_capable tracepoint \(Linux 6\.14 or later\)\n/);
  assert.ok(agent.events.some((e) => e.kind === 'exec' && e.process.comm === 'chown'), 'exec events still flow');
  assert.ok(agent.events.some((e) => e.syscall === 'fchownat'), 'syscall events still flow');
  assert.deepEqual(agent.events.filter((e) => e.kind === 'capability'), [], 'no capability events');
});

test('a kernel without the cgroup_mkdir tracepoint: the agent says new cgroups are not observed and still attributes containers', { skip }, async () => {
  const btf = readFileSync('/sys/kernel/btf/vmlinux');
  const name = Buffer.from('btf_trace_cgroup_mkdir\0');
  const at = btf.indexOf(name);
  assert.ok(at > 0, "this kernel's BTF names btf_trace_cgroup_mkdir");
  Buffer.from('btf_trace_cgroup_mkdiX').copy(btf, at);
  const path = join(tempDir('vigil-btf'), 'vmlinux-no-cgroup-mkdir');
  writeFileSync(path, btf);
  assert.equal(kernelHasTracepoint('cgroup_mkdir', path), false);
  const run = await observe([[NO_POLICY, '--btf', path]], { image: TEST_IMAGES.busybox, script: 'cat /etc/hostname', namePrefix: 'vigil-nocgroup' });
  assert.equal(run.exitCode, 0, run.logs);
  const agent = run.agents[0]!;
  assert.match(agent.stderr, /vigil agent: new cgroups \(container identities at creation\) are not observed: this kernel has no cgroup_mkdir tracepoint/);
  assert.ok(agent.events.some((e) => e.kind === 'exec' && e.process.args[0] === 'cat'), `exec events still flow, looked up the old way: ${brief(agent.events)}`);
});
