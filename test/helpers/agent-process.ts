// Runs the real `vigil agent` as a child process writing a JSON-lines log, the way an
// operator would, and reads back what it wrote.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VigilEvent } from '../../src/events/index.js';

export const VIGIL_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

export interface RunningAgent {
  logPath: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, wait for a clean exit, and return the events written. */
  stop(): Promise<{ code: number | null; events: VigilEvent[] }>;
}

// Agents still running when the test process ends (a test that failed before stop())
// are killed, and an idle agent does not hold the test process open.
const running = new Set<ChildProcess>();
// Their logs go when the test process ends: an agent logs every container on the host, and
// on a busy machine one log can reach gigabytes (a full disk stops dockerd).
const logDirs = new Set<string>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
  for (const d of logDirs) rmSync(d, { recursive: true, force: true });
});

function holdOpen(child: ChildProcess, hold: boolean): void {
  const stream = child.stderr as Socket | null;
  if (hold) {
    child.ref();
    stream?.ref();
  } else {
    child.unref();
    stream?.unref();
  }
}

/** In startAgent's arguments: the log the helper reads is an alerts output (INSECURE events only), not a full one. */
export const ALERTS_ONLY_LOG = '--test-log-alerts-only';

export async function startAgent(extraArgs: string[] = [], readyTimeoutMs = 30_000): Promise<RunningAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-agent-'));
  if (!process.env['VIGIL_KEEP_TEST_LOGS']) logDirs.add(dir);
  const logPath = join(dir, 'events.jsonl');
  const alertsOnly = extraArgs.includes(ALERTS_ONLY_LOG);
  const logOutput = [alertsOnly ? '--alerts' : '--output', `jsonl:${logPath}`];
  const args = extraArgs.filter((a) => a !== ALERTS_ONLY_LOG);
  const child = spawn(process.execPath, [VIGIL_BIN, 'agent', ...logOutput, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolveReady, reject) => {
    // An agent that is not ready in time is killed, not left behind: on a loaded machine
    // the ones left running (still verifying their programs) loaded it further.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent not ready after ${readyTimeoutMs} ms; stderr:\n${err}`));
    }, readyTimeoutMs);
    child.stderr!.on('data', (d: string) => {
      err += d;
      if (err.includes('ready:')) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before it was ready; stderr:\n${err}`));
    });
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  holdOpen(child, false);
  return {
    logPath,
    child,
    stderr: () => err,
    stop: async () => {
      holdOpen(child, true);
      const exited = new Promise<number | null>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
        else child.once('exit', (code) => r(code));
      });
      child.kill('SIGTERM');
      const code = await exited;
      return { code, events: readEvents(logPath) };
    },
  };
}

export function readEvents(path: string): VigilEvent[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as VigilEvent);
}

/** Runs `vigil ARGS` to completion and returns its exit code and output. */
export function runVigil(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [VIGIL_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/**
 * Reads an agent's log as it grows, keeping only the lines a cheap text test selects (a
 * container name): a test's agent logs every container on the host, and on a busy machine
 * that log can outgrow what readFileSync can hold.
 */
export class LogTail {
  private pos = 0;
  private rest = '';
  private readonly decoder = new StringDecoder('utf8'); // a character may straddle two reads
  private readonly kept: VigilEvent[] = [];
  constructor(private readonly path: string, private readonly keep: (line: string) => boolean) {}

  /** Every kept event so far, in log order. */
  events(): VigilEvent[] {
    if (!existsSync(this.path)) return this.kept;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(4 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.pos);
        if (n <= 0) break;
        this.pos += n;
        const text = this.rest + this.decoder.write(buf.subarray(0, n));
        const lines = text.split('\n');
        this.rest = lines.pop() ?? '';
        for (const l of lines) if (l && this.keep(l)) this.kept.push(JSON.parse(l) as VigilEvent);
      }
    } finally {
      closeSync(fd);
    }
    return this.kept;
  }
}
