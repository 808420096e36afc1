// Acceptance tests of the default rules in policies/default/40-network.yaml and
// 50-monitor.yaml, in real containers under the real agent with the default policy: each
// rule's behaviour gives an INSECURE event naming it, and a benign near-miss an event that
// does not. Traffic goes only to the containers' own loopback, to another container on
// Docker's bridge, and to free addresses of that bridge (ARP requests nobody answers); the
// scan of hosts without a route runs in a container without a network (nothing is sent).
// Two agents watch the client container: one whose policy replaces allowed_networks with
// loopback only, one with the default list. Calls are made by busybox's tools and
// test/policy/fixtures/priv-calls.c.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import { ALERTS_ONLY_LOG, startAgent } from '../helpers/agent-process.js';
import { docker, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { brief } from '../helpers/observe.js';
import { alertKey, argv, buildFixture, flagged, missingForRuleTests, notFlagged, readLog, runWatched, sleep } from './fixtures/priv-watch.js';

const skip = missingForRuleTests();

/** The remote port a connect or a TCP state change is about. */
function remotePort(e: VigilEvent): number | undefined {
  if (e.kind === 'network') return typeof e.args['port'] === 'number' ? e.args['port'] : undefined;
  const m = /:(\d+)$/.exec(String(e.args['remote'] ?? ''));
  return m ? Number(m[1]) : undefined;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect({ host, port, timeout: 1000 }, () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
    s.on('timeout', () => {
      s.destroy();
      r(false);
    });
  });
}

describe('default network and monitor rules (40-network.yaml, 50-monitor.yaml) on real containers', { skip, timeout: 600_000 }, () => {
  let dir = '';
  let fixture = '';
  const listener = uniqueName('vigil-net-listen');
  let listenerIp = '';
  /** Under a policy that allows only loopback, and under the default list. */
  let loopbackOnly: VigilEvent[] = [];
  let defaults: VigilEvent[] = [];
  let noNetwork: VigilEvent[] = [];
  /** An agent with the default list writing only alerts (its kernel sends only what the rules need). */
  let alertsOf: { client: VigilEvent[]; offline: VigilEvent[] } = { client: [], offline: [] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-net-'));
    fixture = buildFixture(dir);
    const policy = join(dir, 'loopback-only.yaml');
    writeFileSync(policy, [
      'apiVersion: vigil.dev/v1',
      'kind: Policy',
      'metadata:',
      '  name: test-loopback-only',
      'spec:',
      '  lists:',
      '    allowed_networks: [127.0.0.0/8]',
      '',
    ].join('\n'));

    // A server on Docker's bridge: another container, "outside" for the loopback-only policy.
    docker('run', '-d', '--pull', 'never', '--name', listener, TEST_IMAGES.busybox, 'httpd', '-f', '-p', '7700', '-h', '/tmp');
    listenerIp = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', listener);
    assert.match(listenerIp, /^\d+\.\d+\.\d+\.\d+$/, `the listener's address on the bridge: '${listenerIp}'`);
    const deadline = Date.now() + 20_000;
    while (!(await canConnect(listenerIp, 7700))) {
      assert.ok(Date.now() < deadline, `the listener at ${listenerIp}:7700 never accepted`);
      await sleep(100);
    }

    const script = [
      'P=/priv',
      // Host sweeps of free addresses on the bridge, one thread per host (ARP gets no answer:
      // EHOSTUNREACH after the SYN was queued), in the background while the rest runs.
      '$P sweep 25 172.17.251 1 7000 > /tmp/sweep25 & $P sweep 12 172.17.250 1 7000 > /tmp/sweep12 &',
      'httpd -p 127.0.0.1:7701 -h /tmp',
      `wget -q -O /dev/null http://${listenerIp}:7700/; wget -q -O /dev/null http://127.0.0.1:7701/`,
      `$P connect ::ffff:${listenerIp} 7700`,
      // Connect scans of the container's own loopback (every port closed): blocking, non-blocking,
      // and two below the threshold (20 within 10 s).
      '$P scan 25 127.0.0.1 7800; $P scan-nonblock 25 127.0.0.1 7830; $P scan 19 127.0.0.1 7860; $P scan 5 127.0.0.1 7890',
      'wait; cat /tmp/sweep25 /tmp/sweep12',
    ].join('\n');
    const [restricted, plain, alerts] = await Promise.all([startAgent(['--policy', policy]), startAgent([]), startAgent([ALERTS_ONLY_LOG])]);
    let stopped: Array<Awaited<ReturnType<typeof plain.stop>>> = [];
    let client = { id: '', logs: '' };
    let offline = { id: '', logs: '' };
    try {
      client = await runWatched([plain, restricted], TEST_IMAGES.busybox, script, ['-v', `${fixture}:/priv:ro`], [alerts]);
      // A sweep of hosts with no route to them: each connect fails at once, no packet leaves.
      offline = await runWatched([plain], TEST_IMAGES.busybox, '/priv scan 25 172.17.0.1 7000; /priv scan 5 172.17.0.1 7100', ['--network', 'none', '-v', `${fixture}:/priv:ro`], [alerts]);
    } finally {
      stopped = await Promise.all([restricted.stop(), plain.stop(), alerts.stop()]);
    }
    for (const [i, a] of [restricted, plain, alerts].entries()) assert.equal(stopped[i]!.code, 0, a.stderr());
    assert.match(client.logs, /scan: 25 of 25 failed \(Connection refused\)/);
    assert.match(client.logs, /sweep: 25 of 25 unreachable\nsweep: 12 of 12 unreachable/, 'no other host answers on those addresses');
    assert.match(offline.logs, /scan: 25 of 25 failed \(Network is unreachable\)/);
    const own = (events: VigilEvent[], id: string) => events.filter((e) => e.container.id === id && !e.process.containerSetup);
    loopbackOnly = own(stopped[0]!.events, client.id);
    defaults = own(stopped[1]!.events, client.id);
    noNetwork = own(stopped[1]!.events, offline.id);
    alertsOf = { client: stopped[2]!.events.filter((e) => e.container.id === client.id), offline: stopped[2]!.events.filter((e) => e.container.id === offline.id) };
  });

  after(() => {
    spawnSync('docker', ['rm', '-f', listener], { stdio: 'ignore' });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('connect outside: with allowed_networks replaced by loopback only, a connect to a container on the bridge', () => {
    const wget = flagged(loopbackOnly, 'connect outside', `wget's connect to ${listenerIp}:7700`, (e) => e.syscall === 'connect' && e.process.comm === 'wget' && e.args['addr'] === `${listenerIp}:7700`);
    assert.equal(wget.ret, 0);
    assert.equal(wget.verdict.severity, 'medium');
    const mapped = flagged(loopbackOnly, 'connect outside', 'a connect to the same address mapped into IPv6', (e) => e.syscall === 'connect' && e.args['addr'] === `[::ffff:${listenerIp}]:7700`);
    assert.equal(mapped.ret, 0);
  });

  test('connect outside near-misses: a connect to 127.0.0.1 in the same run; the bridge address under the default list', () => {
    const local = notFlagged(loopbackOnly, 'connect outside', "wget's connect to 127.0.0.1:7701", (e) => e.syscall === 'connect' && e.process.comm === 'wget' && e.args['addr'] === '127.0.0.1:7701');
    assert.ok(local[0]!.ret === 0 || local[0]!.error === 'ECONNREFUSED', JSON.stringify(local[0]));
    notFlagged(loopbackOnly, 'connect outside', "the scans' connects to 127.0.0.1", (e) => e.syscall === 'connect' && String(e.args['addr']).startsWith('127.0.0.1:78'));
    const bridge = notFlagged(defaults, 'connect outside', `wget's connect to ${listenerIp}:7700 under the default list`, (e) => e.syscall === 'connect' && e.process.comm === 'wget' && e.args['addr'] === `${listenerIp}:7700`);
    assert.equal(bridge[0]!.verdict.level, 'NORMAL');
    notFlagged(defaults, 'connect outside', 'the mapped connect under the default list', (e) => e.syscall === 'connect' && e.args['addr'] === `[::ffff:${listenerIp}]:7700`);
  });

  /** The events of one fixture run (by its arguments) and those of them naming network scan. */
  function scanOf(events: VigilEvent[], args: string): { all: VigilEvent[]; alerts: VigilEvent[] } {
    const all = events.filter((e) => (e.kind === 'network' || e.kind === 'tcp') && argv(e) === `/priv ${args}`);
    return { all, alerts: all.filter((e) => e.verdict.rules.includes('network scan')) };
  }

  test('network scan: 25 refused connects of one process, one alert at the 20th', () => {
    for (const [args, first] of [['scan 25 127.0.0.1 7800', 7800], ['scan-nonblock 25 127.0.0.1 7830', 7830]] as const) {
      const { all, alerts } = scanOf(defaults, args);
      assert.equal(all.filter((e) => e.syscall === 'connect').length, 25, `${args}: ${brief(all)}`);
      assert.equal(alerts.length, 1, `${args}: one alert, the window starts again after it: ${brief(alerts)}`);
      assert.equal(alerts[0]!.verdict.level, 'INSECURE');
      assert.equal(remotePort(alerts[0]!), first + 19, `${args}: the alert is about the 20th failed connection: ${JSON.stringify(alerts[0])}`);
    }
  });

  test('network scan: 25 connects to hosts without a route (ENETUNREACH), one alert at the 20th', () => {
    const { all, alerts } = scanOf(noNetwork, 'scan 25 172.17.0.1 7000');
    assert.equal(all.filter((e) => e.error === 'ENETUNREACH').length, 25, brief(all));
    assert.equal(alerts.length, 1, brief(alerts));
    assert.equal(remotePort(alerts[0]!), 7019);
  });

  test('network scan: a sweep of 25 hosts that do not answer, connects blocking in threads of one process: one alert', () => {
    const { all, alerts } = scanOf(defaults, 'sweep 25 172.17.251 1 7000');
    assert.equal(all.filter((e) => e.error === 'EHOSTUNREACH').length, 25, brief(all));
    assert.equal(alerts.length, 1, `each host counts once, not for its state change and its connect: ${brief(alerts)}`);
  });

  test('network scan near-misses: 19 and 5 refused connects, 5 without a route, a sweep of 12 hosts stay NORMAL', () => {
    for (const [events, args, n] of [[defaults, 'scan 19 127.0.0.1 7860', 19], [defaults, 'scan 5 127.0.0.1 7890', 5], [noNetwork, 'scan 5 172.17.0.1 7100', 5], [defaults, 'sweep 12 172.17.250 1 7000', 12]] as const) {
      const connects = notFlagged(events, 'network scan', args, (e) => argv(e) === `/priv ${args}` && (e.kind === 'network' || e.kind === 'tcp'));
      assert.equal(connects.filter((e) => e.syscall === 'connect' && e.ret !== null && e.ret < 0).length, n, `${args}: ${brief(connects)}`);
    }
  });

  test('an agent writing only alerts, whose kernel sends only what the rules need, raises the same scan alerts', () => {
    for (const [which, full, alerts] of [['client', defaults, alertsOf.client], ['offline', noNetwork, alertsOf.offline]] as const) {
      assert.deepEqual(alerts.map(alertKey).sort(), full.filter((e) => e.verdict.level === 'INSECURE').map(alertKey).sort(), `${which}: the alerts-only agent's alerts and the full log's INSECURE events`);
      assert.ok(alerts.some((e) => e.verdict.rules.includes('network scan')), `${which}: no network scan alert`);
    }
  });

  test('records lost: a 4 KiB ring buffer under a flood of opens; the lost entries are INSECURE', async () => {
    const agent = await startAgent(['--ring-buffer-bytes', '4096']);
    const name = uniqueName('vigil-net-flood');
    let id = '';
    let done = false;
    try {
      id = docker('run', '-d', '--pull', 'never', '-v', `${fixture}:/priv:ro`, '--name', name, TEST_IMAGES.busybox, 'sh', '-c', '/priv flood 30000; exec sleep 3600');
      // The agent reads the kernel's loss counters every second. Wait (bounded) for a lost
      // entry and for some of the flood's opens, which need the container still there to be
      // attributed to it.
      const deadline = Date.now() + 120_000;
      while (!done && Date.now() < deadline) {
        const log = readLog(agent.logPath);
        done = log.some((e) => e.kind === 'lost') && log.some((e) => e.container.id === id && e.kind === 'file' && e.args['path'] === '/etc/hostname');
        if (!done) await sleep(200);
      }
    } finally {
      spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
    }
    const { code, events } = await agent.stop();
    assert.equal(code, 0, agent.stderr());
    const lost = events.filter((e) => e.kind === 'lost');
    assert.ok(done && lost.length > 0, `no lost entry and flood events within 120 s; stderr: ${agent.stderr()}`);
    for (const e of lost) {
      assert.equal(e.verdict.level, 'INSECURE', JSON.stringify(e));
      assert.deepEqual(e.verdict.rules, ['records lost']);
      assert.ok(Number(e.args['lost']) > 0);
    }
    // Near-miss: the flood's own events that did arrive are not about lost records.
    notFlagged(events.filter((e) => e.container.id === id), 'records lost', 'the opens of /etc/hostname that arrived', (e) => e.kind === 'file' && e.args['path'] === '/etc/hostname');
  });
});
