// Containers of runtimes that do not name their cgroups with a 64-hex id (LXC/Incus,
// systemd-nspawn) were taken for host cgroups and dropped in the kernel for good. Built
// here the way those runtimes build them: a cgroup in the reference hierarchy, and a
// process in a new mount namespace moved into it. A cgroup the agent does give up on is
// logged once with the reason and counted in the metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroupHierarchy } from '../../src/containers/index.js';
import { startAgent } from '../helpers/agent-process.js';
import { tempDir } from '../helpers/observe.js';

const skip = process.getuid?.() !== 0 ? 'needs root (cgroups, namespaces, BPF)'
  : spawnSync('unshare', ['--help'], { stdio: 'ignore' }).status !== 0 ? 'no unshare(1)' : undefined;

/**
 * Runs `script` in cgroup dir, in a new mount namespace: as the runtimes do, into the
 * cgroup first (from the host), then the mount namespace. With pidns the process is in a
 * new pid namespace before it moves (pid 1 there: $$ names it to cgroup.procs).
 */
function runIn(dir: string, script: string, pidns = false): void {
  const inner = `echo $$ > "${dir}/cgroup.procs" && exec unshare -m --propagation private sh -c '${script}'`;
  const r = pidns
    ? spawnSync('unshare', ['-p', '-f', 'sh', '-c', inner], { encoding: 'utf8' })
    : spawnSync('sh', ['-c', inner], { encoding: 'utf8' });
  assert.ok(r.status !== null, `unshare ran: ${r.error?.message ?? ''}`);
}

test('LXC, systemd-nspawn and unknown-runtime cgroups are watched; an ignored one is logged and counted', { skip }, async () => {
  const h = detectCgroupHierarchy();
  const tag = `${process.pid}x${Date.now().toString(36)}`;
  const made: string[] = [];
  const mk = (...parts: string[]) => {
    let dir = h.root;
    for (const p of parts) {
      dir = join(dir, p);
      if (!existsSync(dir)) {
        mkdirSync(dir);
        made.push(dir);
      }
    }
    return dir;
  };
  const metrics = join(tempDir('vigil-cg-metrics'), 'vigil.prom');
  const agent = await startAgent(['--metrics', metrics]);
  try {
    const lxc = mk(`lxc.payload.vigil-lxc-${tag}`);
    // systemd escapes '-' in unit names: machine "vigil-ns-TAG" is machine-vigil\x2dns\x2dTAG.scope.
    const nspawn = mk('machine.slice', `machine-vigil\\x2dns\\x2d${tag}.scope`);
    const other = mk(`vigil-pidns-${tag}`);
    const service = mk(`vigil-svc-${tag}`);
    runIn(lxc, `cat /etc/hostname /nonexistent-lxc-${tag}`);
    runIn(nspawn, `cat /etc/hostname /nonexistent-nspawn-${tag}`);
    runIn(other, `cat /etc/hostname /nonexistent-pidns-${tag}`, true);
    runIn(service, `cat /etc/hostname /nonexistent-svc-${tag}`);
  } finally {
    // Every process has exited: the cgroups are empty and go, deepest first.
    await new Promise((r) => setTimeout(r, 500));
    const { code, events } = await agent.stop();
    for (const dir of made.reverse()) {
      for (let i = 0; i < 50 && existsSync(dir); i++) {
        try {
          rmdirSync(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // a zombie still charged to it
        }
      }
    }
    assert.equal(code, 0, agent.stderr());
    const execOf = (marker: string) => events.find((e) => e.kind === 'exec' && e.process.args.includes(`/nonexistent-${marker}-${tag}`));
    const lxcExec = execOf('lxc');
    assert.ok(lxcExec, `the LXC-style container's exec is reported\n${agent.stderr()}`);
    assert.deepEqual([lxcExec.container.runtime, lxcExec.container.name, lxcExec.container.id], ['lxc', `vigil-lxc-${tag}`, `vigil-lxc-${tag}`]);
    const nsExec = execOf('nspawn');
    assert.ok(nsExec, `the nspawn-style container's exec is reported\n${agent.stderr()}`);
    assert.deepEqual([nsExec.container.runtime, nsExec.container.name], ['nspawn', `vigil-ns-${tag}`]);
    const otherExec = execOf('pidns');
    assert.ok(otherExec, `a cgroup of an unknown runtime whose process has its own pid namespace is watched\n${agent.stderr()}`);
    assert.equal(otherExec.container.runtime, 'unknown');
    assert.equal(otherExec.container.id, `/vigil-pidns-${tag}`);
    assert.equal(execOf('svc'), undefined, 'a mount namespace alone in an unknown cgroup is a host service');
    const lines = agent.stderr().split('\n').filter((l) => l.includes(`ignoring cgroup /vigil-svc-${tag} `));
    assert.equal(lines.length, 1, `the ignored cgroup is logged once, with the reason:\n${agent.stderr()}`);
    assert.match(lines[0] as string, /host's pid namespace/);
    const prom = readFileSync(metrics, 'utf8');
    const n = Number(/^vigil_ignored_cgroups_total (\d+)$/m.exec(prom)?.[1] ?? '0');
    assert.ok(n >= 1, `counted in the metrics:\n${prom}`);
  }
});
