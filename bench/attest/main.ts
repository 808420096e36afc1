// The tamper-evident log's costs: CPU per entry for chaining (hash chain, Merkle leaf,
// buffered write, seal every 1000), disk bytes per entry, verification throughput of a
// log directory, and alert-to-anchor latency (an INSECURE entry appended → its checkpoint
// acknowledged by a BMC on swtpm).
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BmcApiClient, startBmcService } from '../../src/bmc/index.js';
import { haveProgram } from '../../src/tpm/index.js';
import { Anchorer } from '../../src/attest/index.js';
import { LogWriter, verifyLogDir, type Seal } from '../../src/log/index.js';
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
  const { values } = parseArgs({ args: argv, options: { entries: { type: 'string' }, alerts: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write('usage: vigil bench attest [--entries N (default 1000000)] [--alerts N (default 200)]\n'); return 0; }
  const entries = Number(values.entries ?? 1_000_000);
  const alerts = Number(values.alerts ?? 200);
  if (!Number.isInteger(entries) || entries < 1000 || !Number.isInteger(alerts) || alerts < 1) { process.stderr.write('vigil bench attest: --entries ≥ 1000 and --alerts ≥ 1 integers\n'); return 2; }
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

    process.stderr.write(`chained ${entries} entries\n`);
    // Verification throughput (wall and CPU).
    const w0 = process.hrtime.bigint();
    t = cpuUs();
    const sum = verifyLogDir(dir);
    const verifyS = Number(process.hrtime.bigint() - w0) / 1e9;
    const verifyCpuS = (cpuUs() - t) / 1e6;
    if (sum.entries !== entries) throw new Error(`verified ${sum.entries} of ${entries}`);
    rmSync(dir, { recursive: true, force: true });

    process.stderr.write(`verified them in ${verifyS.toFixed(2)} s\n`);
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
    const tables: Table[] = [{
      title: `tamper-evident log (${entries} entries of ~${Math.round(bytes / entries)} bytes)`,
      columns: ['measure', 'value', 'target'],
      rows: [
        ['agent CPU per entry for chaining (append − JSON render), µs', loggedUs - renderUs, '—'],
        ['disk bytes per entry (entry + chain + seals)', bytes / entries, '—'],
        ['verification throughput, entries/s (wall)', entries / verifyS, 1_000_000],
        ['verification throughput, entries/s (CPU)', entries / verifyCpuS, '—'],
        ['alert → anchor acknowledged, p50 ms', latency?.p50 ?? NaN, '—'],
        ['alert → anchor acknowledged, p99 ms', latency?.p99 ?? NaN, 50],
      ],
    }];
    report('attest', tables, { entries, alerts, renderUs, loggedUs, chainUs: loggedUs - renderUs, bytesPerEntry: bytes / entries, verifyEntriesPerS: entries / verifyS, verifyCpuS, latencyMs: latency ?? null });
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
