// Latency of anchoring (extend) and quoting through the BMC API, against swtpm, with
// the bare TPM commands alongside to show what the HTTP layer and fsync add.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BmcApiClient, startBmcService } from '../../src/bmc/index.js';
import { Alg, haveProgram } from '../../src/tpm/index.js';
import { percentile, report, type Table } from '../lib/report.js';

interface Stats { n: number; medianMs: number; p99Ms: number; meanMs: number; minMs: number; maxMs: number }

async function measure(n: number, op: (i: number) => Promise<unknown>): Promise<Stats> {
  for (let i = 0; i < Math.min(10, n); i++) await op(-1 - i); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await op(i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return {
    n, medianMs: percentile(samples, 50), p99Ms: percentile(samples, 99),
    meanMs: samples.reduce((a, b) => a + b, 0) / n, minMs: samples[0] as number, maxMs: samples[n - 1] as number,
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { iterations: { type: 'string', short: 'n' }, 'ak-alg': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: vigil bench tpm [--iterations N] [--ak-alg ecc|rsa]\n');
    return 0;
  }
  const n = Number(values.iterations ?? 300);
  if (!Number.isInteger(n) || n < 1) { process.stderr.write('vigil bench tpm: --iterations must be a positive integer\n'); return 2; }
  const akAlgorithm = values['ak-alg'] === 'rsa' ? 'rsa' : 'ecc';
  for (const p of ['swtpm', 'swtpm_setup']) {
    if (!(await haveProgram(p))) { process.stderr.write(`vigil bench tpm: ${p} is not installed (scripts/bootstrap.sh installs it)\n`); return 1; }
  }
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bench-tpm-'));
  // The host's anchor rate limit would throttle the anchoring loop below: this measures latency, not the limit.
  const service = await startBmcService({ stateDir, host: '127.0.0.1', port: 0, akAlgorithm, limits: { anchorBurst: n + 1000 } });
  try {
    const host = new BmcApiClient(service.url, service.tokens.host, { pinSha256: service.tls?.fingerprintSha256 });
    const verifier = new BmcApiClient(service.url, service.tokens.verifier, { pinSha256: service.tls?.fingerprintSha256 });
    const anchorValue = (i: number) => createHash('sha256').update(`bench batch ${i}`).digest('hex');
    const selection = [{ hashAlg: Alg.SHA256, pcrs: [service.anchorPcr] }];

    const apiAnchor = await measure(n, (i) => host.anchor(anchorValue(i)));
    const apiQuote = await measure(n, () => verifier.signedMeasurements(randomBytes(32), selection));
    const client = service.tpm.client;
    const digest = createHash('sha256').update('bench').digest();
    const tpmExtend = await measure(n, () => client.pcrExtend(service.anchorPcr, [{ hashAlg: Alg.SHA256, digest }]));
    const tpmQuote = await measure(n, () => service.tpm.quote(randomBytes(32), selection));

    const row = (name: string, s: Stats) => [name, s.n, s.medianMs, s.p99Ms, s.meanMs, s.maxMs];
    const tables: Table[] = [{
      title: `TPM anchoring and quoting latency (swtpm, ${akAlgorithm.toUpperCase()} AK, PCR ${service.anchorPcr}), milliseconds`,
      columns: ['operation', 'n', 'median', 'p99', 'mean', 'max'],
      rows: [
        row('anchor via BMC API (record pending + fsync, extend, read, record + fsync)', apiAnchor),
        row('quote via BMC API (TPMGetSignedMeasurements)', apiQuote),
        row('TPM2_PCR_Extend alone', tpmExtend),
        row('TPM2_Quote alone', tpmQuote),
      ],
    }];
    report('tpm', tables, { akAlgorithm, iterations: n, results: { apiAnchor, apiQuote, tpmExtend, tpmQuote } });
    return 0;
  } finally {
    await service.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
