// The respond tests' shared helpers: policies scoped to a test's own containers, and waiting on
// the agent's log for one container's events.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents, type RunningAgent } from '../helpers/agent-process.js';
import type { VigilEvent } from '../../src/events/index.js';

/** Polls the agent's log until pred holds over this container's events (bounded); the events seen last. */
export async function eventsUntil(agent: RunningAgent, name: string, pred: (es: VigilEvent[]) => boolean, timeoutMs = 30_000): Promise<VigilEvent[]> {
  const end = Date.now() + timeoutMs;
  let es: VigilEvent[] = [];
  while (Date.now() < end) {
    es = readEvents(agent.logPath).filter((e) => e.container.name === name);
    if (pred(es)) return es;
    await new Promise((r) => setTimeout(r, 100));
  }
  return es;
}

/** Writes dir/file: a policy whose body applies only to containers named PREFIX-*. */
export function scoped(dir: string, file: string, prefix: string, body: string[]): void {
  writeFileSync(join(dir, file), ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', `  name: ${file.replace('.yaml', '')}`, 'spec:',
    '  selector:', `    name: ["${prefix}-*"]`, ...body, ''].join('\n'));
}
