// Root on the host can write any BPF map without detaching a program: turn the monitor off
// through vigil_config, or widen a filter through vigil_ports. The agent compares the maps
// only it writes with what it wrote, every second: a change is an INSECURE entry (rule
// `monitor maps changed`) and the agent puts its values back, so the monitor sees again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { ALERTS_ONLY_LOG, readEvents, startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { CONFIG_LAYOUT } from '../../src/events/layout.js';
import { lookup, mapIdOf, update } from '../helpers/bpf-maps.js';
import type { VigilEvent } from '../../src/events/index.js';

const bpftool = spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (bpftool ? undefined : 'no bpftool to write the maps as an attacker would');

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const changed = (agent: RunningAgent, map: string): VigilEvent | undefined =>
  readEvents(agent.logPath).find((e) => e.kind === 'agent' && e.syscall === 'maps-changed' && (e.args['maps'] as string[]).includes(map));

describe('BPF maps only the agent writes, written by root on the host', { skip }, () => {
  let agent: RunningAgent;
  let pid: number;
  before(async () => {
    agent = await startAgent([ALERTS_ONLY_LOG]);
    pid = agent.child.pid ?? 0;
  });
  after(async () => {
    await agent?.stop();
  });

  test('vigil_config with enabled = 0 (the monitor off): an INSECURE entry, the value put back, events seen again', async () => {
    const id = mapIdOf(pid, 'vigil_config');
    const original = lookup(id, [0, 0, 0, 0]);
    const off = [...original];
    off.splice(CONFIG_LAYOUT.enabled, 4, 0, 0, 0, 0);
    update(id, [0, 0, 0, 0], off);
    const entry = await until('the maps-changed entry', () => changed(agent, 'vigil_config'));
    assert.equal(entry.verdict.level, 'INSECURE');
    assert.deepEqual(entry.verdict.rules, ['monitor maps changed']);
    assert.ok((entry.args['changes'] as string[]).includes('vigil_config changed 00000000'), JSON.stringify(entry.args));
    assert.deepEqual(lookup(id, [0, 0, 0, 0]), original, 'the agent put its configuration back');
    // Seeing again: a container's read of /etc/shadow is reported.
    const name = uniqueName('vigil-maps');
    spawnSync('docker', ['run', '--rm', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'cat', '/etc/shadow'], { timeout: 60_000 });
    await until('the read of /etc/shadow', () => readEvents(agent.logPath).find((e) => e.container.name === name && e.args['path'] === '/etc/shadow'));
  });

  test('a key added to vigil_ports: reported as added and removed again', async () => {
    const id = mapIdOf(pid, 'vigil_ports');
    // Port 31337, little-endian u16 as the agent writes it.
    update(id, [0x69, 0x7a], [1]);
    const entry = await until('the maps-changed entry', () => changed(agent, 'vigil_ports'));
    assert.ok((entry.args['changes'] as string[]).includes('vigil_ports added 697a'), JSON.stringify(entry.args));
    const r = spawnSync('bpftool', ['map', 'lookup', 'id', String(id), 'key', '0x69', '0x7a'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'the key is gone again');
  });

  test('the agent\'s own writes (a policy push at start, the filters) are never reported', () => {
    const own = readEvents(agent.logPath).filter((e) => e.kind === 'agent' && e.syscall === 'maps-changed');
    // Only the two changes this test made.
    assert.deepEqual(own.map((e) => (e.args['maps'] as string[]).join()).sort(), ['vigil_config', 'vigil_ports']);
  });
});
