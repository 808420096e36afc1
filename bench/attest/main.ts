// The tamper-evident log's costs: CPU per entry for chaining (hash chain, Merkle leaf,
// buffered write, seal every 1000), disk bytes per entry, verification throughput of a
// log directory written by the project's own LogWriter (in this thread with and without
// the native helper, and over worker threads), and alert-to-anchor latency (an INSECURE
// entry appended → its checkpoint acknowledged by a BMC on swtpm).
//
// Throughput is given per second of wall time and per second of CPU time: on a shared
// machine the first depends on what else runs (the load average is recorded with it), the
// second much less. Each way is run --runs times; the table shows the best run, the JSON
// every run.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BmcApiClient, startBmcService } from '../../src/bmc/index.js';
import { haveProgram } from '../../src/tpm/index.js';
import { Anchorer } from '../../src/attest/index.js';
import { LogWriter, defaultThreads, nativeChain, nativeUnavailable, verifyLogDir, verifyLogDirParallel, type LogSummary, type Seal } from '../../src/log/index.js';
import { percentile, report, type Table } from '../lib/report.js';

/** An event of the usual shape and size (a file open in a container). */
function sampleEvent(i: number, level = 'NORMAL'): { seq: number; verdict: { level: string; rules: string[]; action: string } } & Record<string, unknown> {
  return {
    seq: 0, time: String(1796000000000000000n + BigInt(i) * 1000n), host: 'bench', kind: 'file', syscall: 'openat',
    args: { dirfd: '-100(AT_FDCWD)', name: `/etc/hosts${i % 7}`, flags: '0(O_RDONLY)', mode: '0', path: `/etc/hosts${i % 7}` }, ret: 3,
    container: { id: '6b96307f4cd0a1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081920', name: 'boring_poincare', image: 'vigil-test/bash:2', runtime: 'docker' },
    process: { pid: 8631 + (i % 50), nsPid: 7, ppid: 8605, parent: 'sh', comm: 'cat', exe: '/bin/cat', args: ['cat', '/etc/hosts'], argsTruncated: false, uid: 0, gid: 0, caps: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID'], containerSetup: false },
    namespaces: { mnt: 4026532301, pid: 4026532304, cgroupId: '1', containerKey: '3203' },
    verdict: { level, rules: level === 'INSECURE' ? ['opening passwd'] : [], action: level === 'INSECURE' ? 'alert' : 'none' },
  };
}

function cpuUs(): number { const u = process.cpuUsage(); return u.user + u.system; }
function dirBytes(dir: string): number { return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0); }

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { entries: { type: 'string' }, alerts: { type: 'string' }, runs: { type: 'string' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write('usage: vigil bench attest [--entries N (default 1000000)] [--alerts N (default 200)] [--runs N (default 3)] [--threads N (default: CPUs)]\n'); return 0; }
  const entries = Number(values.entries ?? 1_000_000);
  const alerts = Number(values.alerts ?? 200);
  const runs = Number(values.runs ?? 3);
  const threads = Number(values.threads ?? availableParallelism());
  if (!Number.isInteger(entries) || entries < 1000 || !Number.isInteger(alerts) || alerts < 1 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(threads) || threads < 2) {
    process.stderr.write('vigil bench attest: --entries ≥ 1000, --alerts ≥ 1, --runs ≥ 1 and --threads ≥ 2 integers\n');
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'vigil-bench-attest-'));
  try {
    // Chaining: the same events rendered without the log, then through it.
    const events = Array.from({ length: 1000 }, (_, i) => sampleEvent(i));
    let t = cpuUs();
    for (let i = 0; i < entries; i++) JSON.stringify(events[i % 1000]);
    const renderUs = (cpuUs() - t) / entries;
    const dir = join(work, 'log');
    const w = LogWriter.open(dir, { batchSize: 1000, batchMs: 3_600_000 });
    t = cpuUs();
    for (let i = 0; i < entries; i++) w.append(events[i % 1000] as { seq: number });
    w.close();
    const loggedUs = (cpuUs() - t) / entries;
    const bytes = dirBytes(dir);

    process.stderr.write(`chained ${entries} entries in ${readdirSync(dir).length} segments\n`);
    // Verification throughput, three ways, each the best of `runs`.
    interface Run { wallS: number; cpuS: number; load1: number }
    const measure = async (what: string, n: number, fn: () => LogSummary | Promise<LogSummary>): Promise<{ best: Run; all: Run[] }> => {
      const all: Run[] = [];
      for (let r = 0; r < n; r++) {
        const load1 = loadavg()[0] as number;
        const w0 = process.hrtime.bigint();
        const c0 = cpuUs();
        const sum = await fn();
        const run = { wallS: Number(process.hrtime.bigint() - w0) / 1e9, cpuS: (cpuUs() - c0) / 1e6, load1 };
        if (sum.entries !== entries || sum.unsealed !== 0) throw new Error(`${what}: verified ${sum.entries} of ${entries} entries (${sum.unsealed} unsealed)`);
        all.push(run);
        process.stderr.write(`${what}: ${(entries / run.wallS).toFixed(0)} entries/s wall, ${(entries / run.cpuS).toFixed(0)} per CPU-second (load ${load1.toFixed(1)})\n`);
      }
      return { best: all.reduce((a, b) => (b.wallS < a.wallS ? b : a)), all };
    };
    const native = nativeChain() !== undefined;
    if (!native) process.stderr.write(`the native helper is not used: ${nativeUnavailable}\n`);
    const oneJs = await measure('1 thread, TypeScript only', 1, () => verifyLogDir(dir, { native: false }));
    const one = native ? await measure('1 thread, native helper', runs, () => verifyLogDir(dir)) : oneJs;
    const par = await measure(`${threads} threads (this one and ${threads - 1} worker${threads > 2 ? 's' : ''})${native ? ', native helper' : ''}`, runs, () => verifyLogDirParallel(dir, { threads }));
    rmSync(dir, { recursive: true, force: true });

    // Alert to anchor, through a BMC on swtpm.
    let latency: { p50: number; p99: number; max: number } | undefined;
    if (await haveProgram('swtpm') && await haveProgram('swtpm_setup')) {
      process.stderr.write('starting a BMC on swtpm\n');
      const service = await startBmcService({ stateDir: join(work, 'bmc'), host: '127.0.0.1', port: 0 });
      process.stderr.write(`BMC at ${service.url}\n`);
      try {
        const sent = new Map<string, bigint>();
        const samples: number[] = [];
        let done: (() => void) | undefined;
        const anchorer = new Anchorer(new BmcApiClient(service.url, service.tokens.host, { pinSha256: service.tls!.fingerprintSha256 }), {
          onOutage: ({ error }) => process.stderr.write(`the BMC does not answer: ${error}\n`),
          onAnchored: (seal) => { const t0 = sent.get(seal.checkpoint); if (t0 !== undefined) samples.push(Number(process.hrtime.bigint() - t0) / 1e6); done?.(); },
        });
        let appendedAt = 0n;
        const lw = LogWriter.open(join(work, 'alog'), { batchSize: 100000, batchMs: 3_600_000, onSeal: (s: Seal) => { sent.set(s.checkpoint, appendedAt); anchorer.enqueue(s); } });
        for (let i = 0; i < alerts + 10; i++) {
          for (let k = 0; k < 20; k++) lw.append(sampleEvent(k) as { seq: number });
          const anchored = new Promise<void>((r) => { done = r; });
          appendedAt = process.hrtime.bigint();
          lw.append(sampleEvent(i, 'INSECURE') as { seq: number });
          await anchored;
          if (i < 10) samples.length = 0; // warm-up
        }
        lw.close();
        anchorer.stop();
        samples.sort((a, b) => a - b);
        latency = { p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples[samples.length - 1] as number };
      } finally { await service.close(); }
    }
    const rate = (r: Run, by: 'wallS' | 'cpuS'): number => entries / r[by];
    const tables: Table[] = [{
      title: `tamper-evident log (${entries} entries of ~${Math.round(bytes / entries)} bytes; ${availableParallelism()} CPUs, load ${(loadavg()[0] as number).toFixed(1)} at the end)`,
      columns: ['measure', 'value', 'target'],
      rows: [
        ['agent CPU per entry for chaining (append − JSON render), µs', loggedUs - renderUs, '—'],
        ['disk bytes per entry (entry + chain + seals)', bytes / entries, '—'],
        ['verify, 1 thread, TypeScript only: entries/s (wall)', rate(oneJs.best, 'wallS'), '—'],
        ['verify, 1 thread, TypeScript only: entries per CPU-second', rate(oneJs.best, 'cpuS'), '—'],
        ...(native ? [
          ['verify, 1 thread, native helper: entries/s (wall)', rate(one.best, 'wallS'), '—'],
          ['verify, 1 thread, native helper: entries per CPU-second', rate(one.best, 'cpuS'), '—'],
        ] as Table['rows'] : []),
        [`verify, ${threads} threads: entries/s (wall)`, rate(par.best, 'wallS'), 1_000_000],
        [`verify, ${threads} threads: entries per CPU-second`, rate(par.best, 'cpuS'), '—'],
        ['alert → anchor acknowledged, p50 ms', latency?.p50 ?? NaN, '—'],
        ['alert → anchor acknowledged, p99 ms', latency?.p99 ?? NaN, 50],
      ],
    }];
    const verifyData = (m: { best: Run; all: Run[] }) => ({ entriesPerS: rate(m.best, 'wallS'), entriesPerCpuS: rate(m.best, 'cpuS'), runs: m.all });
    report('attest', tables, {
      entries, alerts, renderUs, loggedUs, chainUs: loggedUs - renderUs, bytesPerEntry: bytes / entries, native, nativeUnavailable: native ? undefined : nativeUnavailable, threads,
      // What vigil verify would start now (one, plus the CPUs the load leaves idle).
      verifierDefaultThreads: defaultThreads(),
      verify: { oneThreadTypeScript: verifyData(oneJs), oneThread: verifyData(one), parallel: verifyData(par) },
      // Kept under its earlier name: the parallel wall rate.
      verifyEntriesPerS: rate(par.best, 'wallS'),
      latencyMs: latency ?? null,
    });
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
