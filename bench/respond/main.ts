// bench/respond: how long a countermeasure takes, from the offending system call to its effect.
//  - user-space kill: a process opens a watched file (the rule's action: kill) and then execs
//    `sleep`; from the open's kernel timestamp to the kernel's exit record of that process
//    (signal 9). Both times come from the kernel's clock, so the agent's own clock does not enter.
//  - pause, stop: a container opens a watched file (action: pause, or stop with a 1 s timeout
//    and a shell that exits on SIGTERM); from the open's kernel timestamp to the response record,
//    written when the Docker API answered (the container is frozen, or down, by then).
//  - in-kernel kill: a program copied into a busybox container calls ptrace, outside the image's
//    allow-list, with the rule's kill (vigil agent --allowlists): sys_enter sends SIGKILL; from
//    the call's kernel timestamp to the kernel's exit record of that process.
//  - in-kernel kill at an open: a rule killing opens of a listed file (decided at the open's
//    sys_exit on the fd's path); from the open's kernel timestamp to the exit record.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, report, type Table } from '../lib/report.js';
import { readEvents, startAgent } from '../../test/helpers/agent-process.js';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../../test/helpers/host.js';
import type { VigilEvent } from '../../src/events/index.js';

function option(argv: string[], name: string, fallback: number): number {
  const v = argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number above 0`);
  return n;
}

const ms = (a: string, b: string) => Number(BigInt(b) - BigInt(a)) / 1e6;

interface Stat { n: number; p50: number; p99: number; min: number; max: number }
function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

async function until<T>(f: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function main(argv: string[]): Promise<number> {
  const missing = missingForContainerTests();
  if (missing) {
    process.stderr.write(`bench respond: cannot run: ${missing}\n`);
    return 1;
  }
  const kills = option(argv, 'kills', 200);
  const containers = option(argv, 'containers', 15);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-respond-'));
  const tag = String(process.pid);
  const path = (what: string) => `/etc/vigil-bench-${tag}-${what}`;
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: bench-respond', 'spec:', '  rules:',
    ...(['kill', 'pause', 'stop'] as const).flatMap((a) => [
      `    - name: bench ${a}`, '      kinds: [file]', `      condition: has(args.path) && args.path == "${path(a)}"`, `      action: ${a}`, '      severity: high',
    ]),
    // The allow-list rule (the default set's, with kill), for the bench's containers only: the
    // agent runs with --allowlists and must not kill anyone else's.
    '    - name: syscall not in allow-list', '      kinds: [syscall]', '      condition: has(args.not_in_allowlist) && args.not_in_allowlist == true',
    '      action: alert', '      severity: high', ''].join('\n'));
  const kernelKillPolicy = join(dir, 'kernel-kill.yaml');
  writeFileSync(kernelKillPolicy, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: bench-kernel-kill', 'spec:', '  selector:', '    name: ["vigil-bench-kkill-*"]',
    '  overrides:', '    - rule: syscall not in allow-list', '      action: kill', ''].join('\n'));
  const openKillPolicy = join(dir, 'open-kill.yaml');
  writeFileSync(openKillPolicy, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: bench-open-kill', 'spec:', '  selector:', '    name: ["vigil-bench-kopen-*"]',
    '  rules:', '    - name: bench kernel open kill', '      kinds: [file]', `      condition: 'syscall in ["open", "openat"] && string(args.path) == "${path('kopen')}"'`,
    '      action: kill', '      severity: high', ''].join('\n'));
  const offList = join(dir, 'off-list');
  execFileSync('cc', ['-O2', '-static', '-o', offList, resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'off-list.c')]);
  const config = join(dir, 'agent.yaml');
  // No rate limit gets in the way of a measurement.
  writeFileSync(config, ['respond:', '  socket: ""', '  stopTimeoutSeconds: 1', '  rateLimit:', '    perRule: {count: 1000000, seconds: 1}', '    perContainer: {count: 1000000, seconds: 1}', ''].join('\n'));
  const killFile = join(dir, 'kill-me');
  writeFileSync(killFile, 'x\n');
  const agent = await startAgent(['--config', config, '--policy', policy, '--policy', kernelKillPolicy, '--policy', openKillPolicy, '--no-default-policy', '--allowlists']);
  const started: string[] = [];
  try {
    // User-space kill: each process opens the file, then becomes `sleep 5` (same pid) and waits to be killed.
    const killer = uniqueName('vigil-bench-kill');
    started.push(killer);
    docker('run', '-d', '--pull', 'never', '--name', killer, '-v', `${killFile}:${path('kill')}:ro`, TEST_IMAGES.busybox, 'sh', '-c',
      `sleep 1; i=0; while [ $i -lt ${kills} ]; do sh -c 'exec 3< ${path('kill')}; exec sleep 5'; i=$((i+1)); done; echo done; sleep 300`);
    const killEvents = await until(() => {
      const es = readEvents(agent.logPath).filter((e) => e.container.name === killer);
      const exits = es.filter((e) => e.kind === 'exit');
      const opens = es.filter((e) => e.kind === 'file' && e.verdict.action === 'kill');
      return opens.length >= kills && exits.length >= kills ? es : undefined;
    }, 60_000 + kills * 1000, `${kills} kills`);
    const exitOf = new Map<number, VigilEvent>();
    for (const e of killEvents) if (e.kind === 'exit') exitOf.set(e.process.pid, e);
    const killMs: number[] = [];
    let notKilled = 0;
    for (const e of killEvents) {
      if (e.kind !== 'file' || e.verdict.action !== 'kill') continue;
      const x = exitOf.get(e.process.pid);
      if (e.response?.outcome === 'done' && x && x.args['signal'] === 9) killMs.push(ms(e.time, x.time));
      else notKilled++;
    }

    const containerRun = async (what: 'pause' | 'stop'): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < containers; i++) {
        const name = uniqueName(`vigil-bench-${what}`);
        started.push(name);
        docker('run', '-d', '--pull', 'never', '--name', name, TEST_IMAGES.busybox, 'sh', '-c',
          `trap 'exit 0' TERM; sleep 0.5; cat ${path(what)} 2>/dev/null; while :; do sleep 0.1; done`);
        const rec = await until(() => readEvents(agent.logPath).find((e) => e.kind === 'response' && e.container.name === name), 60_000, `${what} of ${name}`);
        const trigger = readEvents(agent.logPath).find((e) => e.seq === rec.args['trigger_seq']);
        if (rec.args['outcome'] === 'done' && trigger) out.push(ms(trigger.time, rec.time));
        docker('rm', '-f', name);
      }
      return out;
    };
    // In-kernel kill: the list must be in before the loop starts (its first moments are only reported).
    const kkill = uniqueName('vigil-bench-kkill');
    started.push(kkill);
    docker('run', '-d', '--pull', 'never', '--name', kkill, '-v', `${offList}:/off-list:ro`, TEST_IMAGES.busybox, 'sleep', '600');
    await until(() => readEvents(agent.logPath).find((e) => e.container.name === kkill && e.kind === 'agent' && e.args['state'] === 'loaded'), 120_000, `the allow-list of ${kkill}`);
    docker('exec', kkill, 'sh', '-c', `i=0; while [ $i -lt ${kills} ]; do /off-list ptrace; i=$((i+1)); done; true`);
    const kkillEvents = await until(() => {
      const es = readEvents(agent.logPath).filter((e) => e.container.name === kkill);
      const v = es.filter((e) => e.args['not_in_allowlist'] === true && e.response?.layer === 'kernel');
      const exits = es.filter((e) => e.kind === 'exit' && e.process.comm === 'off-list');
      return v.length >= kills && exits.length >= kills ? es : undefined;
    }, 60_000 + kills * 1000, `${kills} in-kernel kills`);
    const kkillExit = new Map<number, VigilEvent>();
    for (const e of kkillEvents) if (e.kind === 'exit') kkillExit.set(e.process.pid, e);
    const kernelKillMs: number[] = [];
    let kernelNotKilled = 0;
    for (const e of kkillEvents) {
      if (e.args['not_in_allowlist'] !== true || e.response?.layer !== 'kernel') continue;
      const x = kkillExit.get(e.process.pid);
      if (e.response.outcome === 'done' && x && x.args['signal'] === 9) kernelKillMs.push(ms(e.time, x.time));
      else kernelNotKilled++;
    }

    // In-kernel kill at an open's sys_exit: the container is known (its list loaded) before the loop.
    const kopen = uniqueName('vigil-bench-kopen');
    started.push(kopen);
    docker('run', '-d', '--pull', 'never', '--name', kopen, '-v', `${killFile}:${path('kopen')}:ro`, TEST_IMAGES.busybox, 'sleep', '600');
    await until(() => readEvents(agent.logPath).find((e) => e.container.name === kopen && e.kind === 'agent' && e.args['state'] === 'loaded'), 120_000, `the allow-list of ${kopen}`);
    docker('exec', kopen, 'sh', '-c', `i=0; while [ $i -lt ${kills} ]; do sh -c 'exec 3< ${path('kopen')}; echo leaked'; i=$((i+1)); done; true`);
    const kopenEvents = await until(() => {
      const es = readEvents(agent.logPath).filter((e) => e.container.name === kopen);
      const v = es.filter((e) => e.kind === 'file' && e.response?.layer === 'kernel');
      return v.length >= kills && es.filter((e) => e.kind === 'exit' && e.args['signal'] === 9).length >= kills ? es : undefined;
    }, 60_000 + kills * 1000, `${kills} in-kernel kills at an open`);
    const kopenExit = new Map<number, VigilEvent>();
    for (const e of kopenEvents) if (e.kind === 'exit') kopenExit.set(e.process.pid, e);
    const openKillMs: number[] = [];
    for (const e of kopenEvents) {
      if (e.kind !== 'file' || e.response?.layer !== 'kernel') continue;
      const x = kopenExit.get(e.process.pid);
      if (e.response.outcome === 'done' && x && x.args['signal'] === 9) openKillMs.push(ms(e.time, x.time));
    }

    const pauseMs = await containerRun('pause');
    const stopMs = await containerRun('stop');

    const rows = ([['in-kernel kill (call outside the allow-list → exit record)', stat(kernelKillMs)], ['in-kernel kill at an open (sys_exit, fd path → exit record)', stat(openKillMs)], ['user-space kill (open → exit record, SIGKILL)', stat(killMs)], ['pause (open → Docker API answered)', stat(pauseMs)],
      ['stop, 1 s timeout, exits on SIGTERM (open → answered)', stat(stopMs)]] as Array<[string, Stat]>)
      .map(([what, s]) => [what, s.n, s.p50, s.p99, s.min, s.max]);
    const table: Table = { title: 'Time from the offending system call to the countermeasure\'s effect (ms)', columns: ['path', 'n', 'p50', 'p99', 'min', 'max'], rows };
    report('respond', [table], {
      kills: { requested: kills, measured: killMs.length, notKilled, ms: stat(killMs) },
      pause: { ms: stat(pauseMs) }, stop: { ms: stat(stopMs), timeoutSeconds: 1 },
      inKernelKill: { requested: kills, measured: kernelKillMs.length, notKilled: kernelNotKilled, ms: stat(kernelKillMs) },
      inKernelOpenKill: { requested: kills, measured: openKillMs.length, ms: stat(openKillMs) },
    });
    if (notKilled > 0) process.stdout.write(`${notKilled} of ${kills} processes were not killed by the agent (they exited first, or the kill failed): see the log ${agent.logPath}\n`);
    return 0;
  } finally {
    await agent.stop();
    for (const n of started) {
      try { docker('rm', '-f', n); } catch { /* gone */ }
    }
  }
}
