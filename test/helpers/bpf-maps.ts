// The BPF maps of one agent process, read and written with bpftool as root on the host would.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

interface MapShow { id: number; name: string }

/** The ids of the BPF maps a process holds (its fds' fdinfo names them). */
function mapIdsHeldBy(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info = '';
    try { info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'); } catch { continue; }
    const m = /^map_id:\s*(\d+)$/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

/** The id of the agent's own map of this name (other agents on the host have theirs). */
export function mapIdOf(agentPid: number, name: string): number {
  const r = spawnSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  const held = mapIdsHeldBy(agentPid);
  const mine = (JSON.parse(r.stdout) as MapShow[]).filter((m) => m.name === name && held.has(m.id));
  assert.equal(mine.length, 1, `one map ${name} held by the agent (pid ${agentPid}): ${JSON.stringify(mine)}`);
  return mine[0]!.id;
}

export function lookup(id: number, key: number[]): number[] {
  const r = spawnSync('bpftool', ['-j', 'map', 'lookup', 'id', String(id), 'key', ...key.map(String)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const v = (JSON.parse(r.stdout) as { value: string[] }).value;
  return v.map((x) => Number(x));
}

export function update(id: number, key: number[], value: number[]): void {
  const r = spawnSync('bpftool', ['map', 'update', 'id', String(id), 'key', ...key.map(String), 'value', ...value.map(String)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

