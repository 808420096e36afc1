// vigil verify (the library) over a log of many segments, anchored in a real BMC on
// swtpm: one thread and several give the same result, and the same first failure for an
// edited entry deep in the log and for the agent's own "programs changed" record.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcApiClient, startBmcService, type BmcService } from '../../src/bmc/index.js';
import { LogWriter, type Seal } from '../../src/log/index.js';
import { haveProgram } from '../../src/tpm/index.js';
import { verify, VerifyFailure, type VerifyResult } from '../../src/attest/index.js';

let skip: string | undefined;
let work = '';
let service: BmcService | undefined;
let trustPems: string[] = [];

const entry = (i: number, kind = 'file', syscall = 'openat', args: Record<string, unknown> = { path: `/etc/f${i}` }) => ({
  seq: 0, time: String(BigInt(Date.now()) * 1_000_000n), host: 'node-1', kind, syscall, args, verdict: { level: 'NORMAL', rules: [], action: 'none' },
});

/** A log of many small segments whose every seal the BMC anchors, ending with the agent's stop record. */
async function anchoredLog(dir: string, n: number, extra?: (i: number) => Record<string, unknown> | undefined): Promise<void> {
  const seals: Seal[] = [];
  const w = LogWriter.open(dir, { batchSize: 25, batchMs: 3_600_000, segmentBytes: 8000, onSeal: (s) => seals.push(s) });
  w.append(entry(0, 'agent', 'start', { pid: 1, heartbeatSeconds: 1 }) as { seq: number });
  for (let i = 1; i < n; i++) w.append((extra?.(i) ?? entry(i)) as { seq: number });
  w.append(entry(n, 'agent', 'stop', { uptimeMs: 1 }) as { seq: number });
  w.close();
  const host = new BmcApiClient(service?.url ?? '', service?.tokens.host ?? '');
  for (const s of seals) await host.anchor(s.checkpoint);
}

before(async () => {
  for (const p of ['swtpm', 'swtpm_setup', 'swtpm_localca']) if (!(await haveProgram(p))) skip = `not installed: ${p}`;
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'vigil-vpar-'));
  service = await startBmcService({ stateDir: join(work, 'bmc'), host: '127.0.0.1', port: 0, plainHttp: true });
  trustPems = ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => readFileSync(join(work, 'bmc', 'ca', f), 'utf8'));
});
after(async () => {
  await service?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function outcome(logDir: string, threads: number): Promise<{ ok: true; r: Omit<VerifyResult, 'enrolled' | 'anchoredTime'> } | { ok: false; check: string; message: string }> {
  try {
    const { enrolled: _e, anchoredTime: _t, ...r } = await verify({ client: new BmcApiClient(service?.url ?? '', service?.tokens.verifier ?? ''), logDir, trustPems, threads });
    return { ok: true, r };
  } catch (e) {
    if (!(e instanceof VerifyFailure)) throw e;
    return { ok: false, check: e.check, message: e.message };
  }
}

test('vigil verify over many segments: the same result, and the same first failure, in one thread and in three', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  // One BMC, so one anchor list: each log below is verified on its own BMC-anchored history.
  const dir = join(work, 'log');
  await anchoredLog(dir, 400);
  const segments = readdirSync(dir).filter((f) => f.startsWith('segment-')).sort();
  assert.ok(segments.length >= 8, `many segments (${segments.length})`);
  const one = await outcome(dir, 1);
  assert.equal(one.ok, true, JSON.stringify(one));
  assert.deepEqual(await outcome(dir, 3), one);
  if (one.ok) assert.equal(one.r.lastSeq, 401);

  // An entry deep in the log edited (and its line otherwise kept): found at the same place either way.
  const edited = join(work, 'edited');
  cpSync(dir, edited, { recursive: true });
  const target = join(edited, segments[5] as string);
  const lines = readFileSync(target, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.startsWith('{"seq"') && l.includes('/etc/f'));
  lines[i] = (lines[i] as string).replace('/etc/f', '/etc/g');
  writeFileSync(target, lines.join('\n'));
  const e1 = await outcome(edited, 1);
  assert.equal(e1.ok, false);
  if (!e1.ok) {
    assert.equal(e1.check, 'log');
    assert.match(e1.message, new RegExp(`${segments[5]} line ${i + 1}: entry seq \\d+ was modified`));
  }
  assert.deepEqual(await outcome(edited, 3), e1);
});

test('the agent\'s "programs changed" record in a middle segment is found by the threads that check it', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const fresh = await startBmcService({ stateDir: join(work, 'bmc2'), host: '127.0.0.1', port: 0, plainHttp: true });
  const saved = { service, trustPems };
  try {
    service = fresh;
    trustPems = ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => readFileSync(join(work, 'bmc2', 'ca', f), 'utf8'));
    const dir = join(work, 'log-monitor');
    await anchoredLog(dir, 300, (i) => (i === 150 ? entry(i, 'agent', 'programs-changed', { changes: [{ change: 'detached', object: 'process.bpf.o', program: 'vigil_exec', section: 'tp_btf/sched_process_exec', linkId: 7, progId: 9 }] }) : undefined));
    const one = await outcome(dir, 1);
    assert.equal(one.ok, false);
    if (!one.ok) { assert.equal(one.check, 'monitor'); assert.match(one.message, /entry seq 151 .*vigil_exec/); }
    assert.deepEqual(await outcome(dir, 3), one);
  } finally {
    service = saved.service;
    trustPems = saved.trustPems;
    await fresh.close();
  }
});
