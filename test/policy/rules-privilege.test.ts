// Acceptance tests of the default rules in policies/default/30-privilege.yaml: for every
// rule, the behaviour it is about, made in a real container under the real agent with the
// default policy, gives an INSECURE event naming the rule; a benign near-miss (the closest
// call that is not the behaviour) gives an event that does not name it. One agent watches
// three containers: a default one, and two with --cap-add SYS_ADMIN. The calls are made by
// a small static program (test/policy/fixtures/priv-calls.c) and by the images' own tools.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import { ALERTS_ONLY_LOG, startAgent } from '../helpers/agent-process.js';
import { TEST_IMAGES } from '../helpers/host.js';
import { brief } from '../helpers/observe.js';
import { alertKey, argv, buildFixture, flagged, missingForRuleTests, notFlagged, runWatched, type Watched } from './fixtures/priv-watch.js';

const skip = missingForRuleTests();

const capability = (e: VigilEvent, name: string, granted: boolean) => e.kind === 'capability' && e.args['capability'] === name && e.args['granted'] === granted;

interface Run extends Watched {
  /** The container's own events (the runtime's set-up left out). */
  events: VigilEvent[];
  /** The runtime's set-up of the container (runc's init). */
  setup: VigilEvent[];
  /** What an agent writing only alerts wrote of the container (its kernel sends only what the rules need). */
  alerts: VigilEvent[];
}

describe('default privilege rules (30-privilege.yaml) on real containers', { skip, timeout: 600_000 }, () => {
  let plain: Run; // default capabilities
  let admin: Run; // --cap-add SYS_ADMIN
  let admin2: Run; // a second SYS_ADMIN container: the capability alert is per container
  let dir = '';
  const servers: Server[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-priv-'));
    const fixture = buildFixture(dir);
    // Stand-ins for a runtime's API socket and an application's socket, bind-mounted into the
    // container the way `-v /var/run/docker.sock:/var/run/docker.sock` is: they accept and close.
    for (const name of ['docker.sock', 'app.sock']) {
      const server = createServer((s) => s.end());
      await new Promise<void>((r) => server.listen(join(dir, name), r));
      servers.push(server);
    }
    const plainScript = [
      'P=/priv',
      // ptrace: a process attaching to its sibling (injection), and a debugger's own child
      '$P ptrace-attach; $P ptrace-seize; $P ptrace-traceme',
      // kernel modules, bpf, and prctl as the near-miss: all refused in a default container
      '$P modules; $P bpf; $P prctl',
      // unshare without CAP_SYS_ADMIN: refused by Docker's seccomp profile, still seen
      '$P unshare-files; $P unshare-user; $P mount /mnt',
      // the runtime's API socket, by absolute and relative name, opened as a file; another socket
      '$P connect-unix /var/run/docker.sock; $P connect-unix /run/app.sock',
      '(cd /var/run && $P connect-unix docker.sock); cat /var/run/docker.sock; cat /etc/hostname',
      // a capability of the default set
      'touch /tmp/owned; chown 1 /tmp/owned',
      // a setuid-root copy of the fixture run by uid 1000, and the near-misses
      'cp $P /tmp/suid; chmod 4755 /tmp/suid',
      '$P as 1000 /tmp/suid ids; $P as 1000 /tmp/suid regain; $P as 1000 /bin/id; $P as 1000 $P setuid0; $P setuid0',
    ].join('\n');
    const adminScript = [
      'P=/priv',
      'mkdir /tmp/m; $P mount /tmp/m',
      'unshare -U true; unshare -m true; $P unshare-files',
      'nsenter -t 1 -m -u true',
      'touch /tmp/owned; chown 1 /tmp/owned',
    ].join('\n');

    const [agent, alertsAgent] = await Promise.all([startAgent([]), startAgent([ALERTS_ONLY_LOG])]);
    const runs: Watched[] = [];
    let stopped: Array<Awaited<ReturnType<typeof agent.stop>>> = [];
    const mount = ['-v', `${fixture}:/priv:ro`];
    const watch = (image: string, script: string, dockerArgs: string[]) => runWatched([agent], image, script, [...mount, ...dockerArgs], [alertsAgent]);
    try {
      runs.push(await watch(TEST_IMAGES.busybox, plainScript, ['-v', `${join(dir, 'docker.sock')}:/var/run/docker.sock`, '-v', `${join(dir, 'app.sock')}:/run/app.sock`]));
      runs.push(await watch(TEST_IMAGES.bash, adminScript, ['--cap-add', 'SYS_ADMIN']));
      runs.push(await watch(TEST_IMAGES.bash, 'true; true', ['--cap-add', 'SYS_ADMIN']));
    } finally {
      stopped = await Promise.all([agent.stop(), alertsAgent.stop()]);
    }
    assert.equal(stopped[0]!.code, 0, agent.stderr());
    assert.equal(stopped[1]!.code, 0, alertsAgent.stderr());
    [plain, admin, admin2] = runs.map((r) => {
      const mine = stopped[0]!.events.filter((e) => e.container.id === r.id);
      return {
        ...r,
        events: mine.filter((e) => !e.process.containerSetup),
        setup: mine.filter((e) => e.process.containerSetup),
        alerts: stopped[1]!.events.filter((e) => e.container.id === r.id),
      };
    }) as [Run, Run, Run];
  });

  after(() => {
    for (const s of servers) s.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('illegal capability: the first use of SYS_ADMIN in a --cap-add SYS_ADMIN container, once per container', () => {
    const uses = admin.events.filter((e) => capability(e, 'SYS_ADMIN', true));
    assert.ok(new Set(uses.map((e) => e.process.pid)).size > 3, `SYS_ADMIN is checked by many of the container's processes: ${brief(uses)}`);
    const alerts = uses.filter((e) => e.verdict.rules.includes('illegal capability'));
    assert.equal(alerts.length, 1, `one alert per container and capability: ${JSON.stringify(alerts.map((e) => [e.seq, e.process.comm]))}`);
    assert.equal(alerts[0], uses[0], 'the alert is the first use');
    assert.equal(alerts[0]!.verdict.level, 'INSECURE');
    assert.equal(alerts[0]!.verdict.severity, 'high');
    // Later processes, the one that mounts a tmpfs with it among them, are not alerted again.
    const mountUse = uses.find((e) => argv(e) === '/priv mount /tmp/m');
    assert.ok(mountUse && !mountUse.verdict.rules.includes('illegal capability'), `the mount's check: ${JSON.stringify(mountUse)}`);
    // Another container with the same capability has its own alert.
    const other = admin2.events.filter((e) => capability(e, 'SYS_ADMIN', true));
    assert.equal(other.filter((e) => e.verdict.rules.includes('illegal capability')).length, 1, `second container: ${brief(other)}`);
    assert.equal(other[0]!.verdict.level, 'INSECURE');
  });

  test('illegal capability near-misses: denied SYS_ADMIN probes at exec and CHOWN of the default set stay NORMAL', () => {
    const probes = notFlagged(plain.events, 'illegal capability', 'the kernel probing SYS_ADMIN at exec in a default container', (e) => capability(e, 'SYS_ADMIN', false));
    assert.ok(probes.length > 3);
    for (const e of probes) assert.equal(e.verdict.level, 'NORMAL');
    assert.ok(!plain.events.some((e) => capability(e, 'SYS_ADMIN', true)), 'a default container never holds SYS_ADMIN');
    for (const r of [plain, admin]) {
      const chown = notFlagged(r.events, 'illegal capability', 'chown using CHOWN', (e) => capability(e, 'CHOWN', true) && e.process.comm === 'chown');
      assert.equal(chown[0]!.verdict.level, 'NORMAL');
    }
  });

  test('privilege escalation through setuid binary: a setuid-root program run by uid 1000', () => {
    const exec = flagged(plain.events, 'privilege escalation through setuid binary', 'the exec of /tmp/suid by uid 1000', (e) => e.kind === 'exec' && argv(e) === '/tmp/suid ids');
    assert.equal(exec.process.uid, 1000);
    assert.ok(exec.process.caps.includes('SETUID') && exec.process.caps.includes('DAC_OVERRIDE'), exec.process.caps.join(','));
    assert.match(plain.logs, /uid=1000 euid=0/);
    // Inside one: giving up the effective uid 0 and taking it back; the real uid stays 1000.
    const regain = flagged(plain.events, 'privilege escalation through setuid binary', 'setuid(0) by the setuid program whose real uid is 1000', (e) => e.syscall === 'setuid' && argv(e) === '/tmp/suid regain');
    assert.deepEqual([regain.args['uid'], regain.ret, regain.process.uid], [0, 0, 1000]);
  });

  test('setuid near-misses: uid 1000 running an ordinary program, a refused setuid(0), root calling setuid(0)', () => {
    const rule = 'privilege escalation through setuid binary';
    const id = notFlagged(plain.events, rule, 'uid 1000 exec-ing /bin/id', (e) => e.kind === 'exec' && argv(e) === '/bin/id');
    assert.deepEqual([id[0]!.process.uid, id[0]!.process.caps], [1000, []]);
    const refused = notFlagged(plain.events, rule, 'setuid(0) refused to uid 1000', (e) => e.syscall === 'setuid' && e.args['uid'] === 0 && e.process.uid === 1000 && argv(e) === '/priv setuid0');
    assert.equal(refused[0]!.error, 'EPERM');
    assert.equal(refused[0]!.verdict.level, 'NORMAL');
    const root = notFlagged(plain.events, rule, "root's own setuid(0)", (e) => e.syscall === 'setuid' && e.process.uid === 0 && argv(e) === '/priv setuid0');
    assert.equal(root[0]!.ret, 0);
  });

  test('ptrace another process: PTRACE_ATTACH and PTRACE_SEIZE of a sibling', () => {
    for (const request of ['PTRACE_ATTACH', 'PTRACE_SEIZE']) {
      const e = flagged(plain.events, 'ptrace another process', request, (x) => x.syscall === 'ptrace' && String(x.args['request']).includes(request));
      assert.equal(e.ret, 0, `${request} succeeded (no Yama, same uid): ${JSON.stringify(e)}`);
    }
  });

  test("ptrace near-misses: PTRACE_TRACEME and the debugger's PTRACE_CONT, PTRACE_DETACH", () => {
    for (const request of ['PTRACE_TRACEME', 'PTRACE_CONT', 'PTRACE_DETACH']) {
      const [e] = notFlagged(plain.events, 'ptrace another process', request, (x) => x.syscall === 'ptrace' && String(x.args['request']).includes(request));
      assert.equal(e!.verdict.level, 'NORMAL', JSON.stringify(e));
    }
  });

  test('mount in container: mount and umount2 of a tmpfs, done (SYS_ADMIN) and refused (default)', () => {
    for (const syscall of ['mount', 'umount2']) {
      const done = flagged(admin.events, 'mount in container', `${syscall} of /tmp/m`, (e) => e.syscall === syscall && e.args['path'] === '/tmp/m');
      assert.equal(done.ret, 0, JSON.stringify(done));
      const refused = flagged(plain.events, 'mount in container', `refused ${syscall} of /mnt`, (e) => e.syscall === syscall && e.args['path'] === '/mnt');
      assert.equal(refused.error, 'EPERM');
      assert.equal(refused.args['refused_before_entry'], true);
    }
    // unshare -m makes its new mount namespace private: a mount too.
    flagged(admin.events, 'mount in container', 'unshare -m making / private', (e) => e.syscall === 'mount' && e.process.comm === 'unshare');
  });

  test("mount near-miss: the runtime's own mounts while it sets the container up stay NORMAL", () => {
    const mounts = notFlagged(admin.setup, 'mount in container', "runc's set-up mounts", (e) => e.syscall === 'mount' || e.syscall === 'umount2');
    assert.ok(mounts.length > 10, brief(mounts));
    for (const e of mounts) assert.equal(e.verdict.level, 'NORMAL');
  });

  test('new namespace in container: unshare -U, unshare -m, and a refused unshare(CLONE_NEWUSER)', () => {
    for (const flag of ['CLONE_NEWUSER', 'CLONE_NEWNS']) {
      const e = flagged(admin.events, 'new namespace in container', `unshare(${flag})`, (x) => x.syscall === 'unshare' && x.process.comm === 'unshare' && String(x.args['flags']).includes(flag));
      assert.equal(e.ret, 0);
    }
    const refused = flagged(plain.events, 'new namespace in container', 'refused unshare(CLONE_NEWUSER)', (e) => e.syscall === 'unshare' && String(e.args['flags']).includes('CLONE_NEWUSER'));
    assert.equal(refused.args['refused_before_entry'], true);
  });

  test('new namespace near-miss: unshare(CLONE_FILES) makes no namespace', () => {
    const done = notFlagged(admin.events, 'new namespace in container', 'unshare(CLONE_FILES) with SYS_ADMIN', (e) => e.syscall === 'unshare' && String(e.args['flags']).includes('CLONE_FILES'));
    assert.equal(done[0]!.ret, 0);
    assert.equal(done[0]!.verdict.level, 'NORMAL');
    notFlagged(plain.events, 'new namespace in container', 'unshare(CLONE_FILES) refused by seccomp', (e) => e.syscall === 'unshare' && String(e.args['flags']).includes('CLONE_FILES'));
  });

  test('enter namespace: nsenter executed, and its setns', () => {
    flagged(admin.events, 'enter namespace', 'the exec of nsenter', (e) => e.kind === 'exec' && e.process.comm === 'nsenter');
    const setns = flagged(admin.events, 'enter namespace', 'setns by nsenter', (e) => e.syscall === 'setns');
    assert.equal(setns.ret, 0);
  });

  test("enter namespace near-miss: unshare's exec and call are not entering one", () => {
    notFlagged(admin.events, 'enter namespace', 'the exec of unshare', (e) => e.kind === 'exec' && e.process.comm === 'unshare');
    notFlagged(admin.events, 'enter namespace', 'unshare()', (e) => e.syscall === 'unshare');
  });

  test('kernel module load: init_module, finit_module, delete_module refused by the seccomp profile and still judged', () => {
    for (const syscall of ['init_module', 'finit_module', 'delete_module']) {
      const e = flagged(plain.events, 'kernel module load', syscall, (x) => x.syscall === syscall);
      assert.equal(e.error, 'EPERM');
      assert.equal(e.args['refused_before_entry'], true);
      assert.equal(e.verdict.severity, 'critical');
    }
  });

  test('bpf from container: bpf(BPF_PROG_LOAD) refused by the seccomp profile and still judged', () => {
    const e = flagged(plain.events, 'bpf from container', 'bpf(BPF_PROG_LOAD)', (x) => x.syscall === 'bpf');
    assert.match(String(e.args['cmd']), /BPF_PROG_LOAD/);
    assert.equal(e.args['refused_before_entry'], true);
  });

  test('kernel module and bpf near-miss: prctl calls of the same program stay NORMAL', () => {
    const prctl = (e: VigilEvent) => e.syscall === 'prctl' && argv(e) === '/priv prctl';
    notFlagged(plain.events, 'kernel module load', 'prctl', prctl);
    const calls = notFlagged(plain.events, 'bpf from container', 'prctl', prctl);
    assert.deepEqual(calls.map((e) => [String(e.args['option']).replace(/^\d+\(|\)$/g, ''), e.verdict.level]), [['PR_SET_NAME', 'NORMAL'], ['PR_GET_DUMPABLE', 'NORMAL']]);
  });

  test('container runtime socket access: connect to the mounted docker.sock (absolute and relative name), and opening it', () => {
    const rule = 'container runtime socket access';
    const abs = flagged(plain.events, rule, 'connect to /var/run/docker.sock', (e) => e.syscall === 'connect' && e.args['addr'] === '/var/run/docker.sock');
    assert.equal(abs.ret, 0);
    assert.equal(abs.verdict.severity, 'critical');
    const rel = flagged(plain.events, rule, 'connect to docker.sock from /var/run', (e) => e.syscall === 'connect' && e.args['addr'] === 'docker.sock');
    assert.equal(rel.ret, 0);
    const open = flagged(plain.events, rule, 'open of /var/run/docker.sock', (e) => e.kind === 'file' && e.args['path'] === '/var/run/docker.sock');
    assert.equal(open.error, 'ENXIO');
  });

  test("runtime socket near-misses: another application's socket, another file", () => {
    const rule = 'container runtime socket access';
    const app = notFlagged(plain.events, rule, 'connect to /run/app.sock', (e) => e.syscall === 'connect' && e.args['addr'] === '/run/app.sock');
    assert.equal(app[0]!.ret, 0);
    assert.equal(app[0]!.verdict.level, 'NORMAL');
    notFlagged(plain.events, rule, 'open of /etc/hostname', (e) => e.kind === 'file' && e.args['path'] === '/etc/hostname' && e.process.comm === 'cat');
  });

  test('an agent writing only alerts, whose kernel sends only what the rules need, raises the same alerts', () => {
    const expected: Record<string, string[]> = {
      plain: ['ptrace another process', 'mount in container', 'new namespace in container', 'kernel module load', 'bpf from container', 'container runtime socket access', 'privilege escalation through setuid binary'],
      admin: ['illegal capability', 'mount in container', 'new namespace in container', 'enter namespace'],
      admin2: ['illegal capability'],
    };
    for (const [which, run] of [['plain', plain], ['admin', admin], ['admin2', admin2]] as const) {
      const full = run.events.filter((e) => e.verdict.level === 'INSECURE').map(alertKey).sort();
      const alerts = run.alerts.map(alertKey).sort();
      assert.deepEqual(alerts, full, `${which}: the alerts-only agent's alerts and the full log's INSECURE events`);
      const rules = new Set(run.alerts.flatMap((e) => e.verdict.rules));
      for (const rule of expected[which]!) assert.ok(rules.has(rule), `${which}: no alert for '${rule}' from the alerts-only agent`);
    }
  });
});
