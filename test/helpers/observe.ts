// One container run watched by one or more real agents at once (each with its own
// flags and config), and what each agent wrote of that container.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent } from './agent-process.js';
import { docker, uniqueName } from './host.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

/** Writes an agent config file and returns its path. */
export function agentConfig(yaml: string): string {
  const path = join(tempDir('vigil-config'), 'agent.yaml');
  writeFileSync(path, yaml);
  return path;
}

export interface ContainerRun {
  image: string;
  /** Run by `sh -c` as the container's command. */
  script: string;
  dockerArgs?: string[];
  namePrefix?: string;
}

export interface AgentView {
  /** The container's own events (the runtime's set-up left out), in log order. */
  events: VigilEvent[];
  /** Everything the agent wrote, every container included (other tests may run containers too). */
  all: VigilEvent[];
  stderr: string;
  logPath: string;
}

export interface Observed {
  id: string;
  name: string;
  exitCode: number;
  logs: string;
  agents: AgentView[];
}

/** Starts one agent per argument list, runs the container to its end, stops the agents. */
export async function observe(agentArgs: string[][], run: ContainerRun): Promise<Observed> {
  const agents = await Promise.all(agentArgs.map((args) => startAgent(args)));
  const name = uniqueName(run.namePrefix ?? 'vigil-obs');
  let id = '';
  let exitCode = -1;
  let logs = '';
  try {
    id = docker('run', '-d', '--pull', 'never', ...(run.dockerArgs ?? []), '--name', name, run.image, 'sh', '-c', run.script);
    exitCode = Number(docker('wait', name));
    const out = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
    logs = `${out.stdout}${out.stderr}`;
  } finally {
    docker('rm', '-f', name);
  }
  await new Promise((r) => setTimeout(r, 300));
  const views: AgentView[] = [];
  for (const agent of agents) {
    const { code, events } = await agent.stop();
    assert.equal(code, 0, agent.stderr());
    views.push({ events: events.filter((e) => e.container.id === id && !e.process.containerSetup), all: events, stderr: agent.stderr(), logPath: agent.logPath });
  }
  return { id, name, exitCode, logs, agents: views };
}

/** A compact listing of events for assertion messages. */
export function brief(events: VigilEvent[]): string {
  return JSON.stringify(events.map((e) => [e.kind, e.syscall, e.process.comm, e.args, e.ret]));
}
