// Anchoring is crash-consistent: after the BMC process dies between any two steps
// (record pending → PCR_Extend → record extended), the restarted BMC's anchor list replays
// to the PCR; an anchor list that cannot be written refuses anchors without extending.
// The crashes are real (the BMC runs in a child process that SIGKILLs itself at a fault
// point) against a real swtpm that outlives it, as a BMC's TPM outlives its service.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BmcApiClient, BmcApiError, startBmcService, type AnchorEntry, type BmcService } from '../../src/bmc/index.js';
import { clientFor } from './bmc-fixture.js';
import { Alg, replayPcr, verifyQuote } from '../../src/tpm/index.js';
import { missingPrograms, startSwtpm, type SwtpmEnv } from '../tpm/swtpm-fixture.js';

const childPath = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const PCR = 23;

let skip: string | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => { skip = await missingPrograms(['swtpm', 'swtpm_setup', 'swtpm_localca']); });
after(async () => { for (const c of cleanups.reverse()) await c(); });

interface Record { seq: number; state?: string; anchor: string }
const records = (stateDir: string): Record[] => readFileSync(join(stateDir, 'anchors.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record);

/**
 * What a verifier checks: a fresh quote of the anchor PCR verifies with the AK, and the
 * list's anchors of the quoted reset epoch replay to the quoted value, which is also
 * what PCR_Read says now.
 */
async function assertListExplainsPcr(service: BmcService): Promise<AnchorEntry[]> {
  const verifier = clientFor(service, service.tokens.verifier);
  const ak = await verifier.attestationKey();
  const ekName = (await verifier.endorsementKey()).name;
  const nonce = randomBytes(32);
  const sm = await verifier.signedMeasurements(nonce, [{ hashAlg: Alg.SHA256, pcrs: [PCR] }]);
  const list = (await verifier.anchors()).Members;
  const pcrSelection = [{ hashAlg: Alg.SHA256, pcrs: [PCR] }];
  const resetCount = verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, akName: ak.name, pcrSelection }).clockInfo.resetCount;
  const epoch = list.filter((m) => m.resetCount === resetCount);
  const replayed = replayPcr(Alg.SHA256, epoch.map((m) => Buffer.from(m.anchor, 'hex')));
  // The selection is pinned as well as the value: a quote over no PCR would match any value.
  verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, akName: ak.name, pcrSelection, pcrValues: new Map([[Alg.SHA256, new Map([[PCR, replayed]])]]) });
  assert.deepEqual(await service.tpm.readPcr(PCR), replayed, 'the list replays to PCR_Read');
  return list;
}

/** Starts the BMC in a child process that dies at `point` of anchor `seq`; resolves once it listens. */
async function startCrashingBmc(stateDir: string, env: SwtpmEnv, point: 'pendingRecorded' | 'extended', seq: number): Promise<{ child: ChildProcess; url: string; hostToken: string; pin: string; exited: Promise<NodeJS.Signals | null> }> {
  const child = spawn(process.execPath, [childPath, stateDir, env.swtpm.sockets?.data ?? '', point, String(seq)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the BMC child did not start within 30 s: ${err}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(out.slice(0, nl)); }
    });
    void exited.then((signal) => { clearTimeout(timer); reject(new Error(`the BMC child ended (${signal}) before listening: ${err}`)); });
  });
  const { url, host, pin } = JSON.parse(line) as { url: string; host: string; pin: string };
  return { child, url, hostToken: host, pin, exited };
}

async function crashAndRecover(point: 'pendingRecorded' | 'extended'): Promise<{ list: AnchorEntry[]; disk: Record[] }> {
  const env = await startSwtpm({ provision: true });
  cleanups.push(() => env.close());
  await env.client.close(); // the BMC is the TPM's only user
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-crash-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));

  const bmc = await startCrashingBmc(stateDir, env, point, 4);
  const host = new BmcApiClient(bmc.url, bmc.hostToken, { pinSha256: bmc.pin });
  for (let i = 1; i <= 3; i++) assert.equal((await host.anchor(sha(`batch ${i}`))).seq, i);
  await assert.rejects(host.anchor(sha('batch 4')), (e: unknown) => e instanceof BmcApiError && e.status === 0, 'the BMC died without answering');
  assert.equal(await bmc.exited, 'SIGKILL');
  const left = records(stateDir).at(-1);
  assert.deepEqual([left?.seq, left?.state, left?.anchor], [4, 'pending', sha('batch 4')], 'the crash left anchor 4 pending on disk');
  // The crash happened where intended: the PCR holds anchor 4 only if the extend ran.
  const pcrAtCrash = (await env.client.pcrRead(Alg.SHA256, [PCR])).get(PCR);
  await env.client.close();
  const extendedAnchors = point === 'extended' ? [1, 2, 3, 4] : [1, 2, 3];
  assert.deepEqual(pcrAtCrash, replayPcr(Alg.SHA256, extendedAnchors.map((i) => Buffer.from(sha(`batch ${i}`), 'hex'))));

  // The restarted BMC settles anchor 4 from the PCR before it serves anyone.
  const service = await startBmcService({ stateDir, host: '127.0.0.1', port: 0, source: { kind: 'swtpm-unix', path: env.swtpm.sockets?.data ?? '' } });
  try {
    const list = await assertListExplainsPcr(service);
    // The anchor list goes on as before.
    const next = await clientFor(service, service.tokens.host).anchor(sha('after the crash'));
    await assertListExplainsPcr(service);
    return { list: [...list, next], disk: records(stateDir) };
  } finally { await service.close(); }
}

test('a crash after the pending record, before PCR_Extend: the restarted BMC drops the anchor and its list replays to the PCR', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { list, disk } = await crashAndRecover('pendingRecorded');
  assert.deepEqual(list.map((m) => m.anchor), [sha('batch 1'), sha('batch 2'), sha('batch 3'), sha('after the crash')]);
  assert.deepEqual(list.map((m) => m.seq), [1, 2, 3, 4], 'the dropped anchor leaves no gap in seq');
  const dropped = disk.find((r) => r.state === 'dropped');
  assert.equal(dropped?.anchor, sha('batch 4'));
  assert.match((dropped as { reason?: string }).reason ?? '', /PCR does not hold it/);
});

test('a crash after PCR_Extend, before the extended record: the restarted BMC records the anchor as extended and its list replays to the PCR', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { list, disk } = await crashAndRecover('extended');
  assert.deepEqual(list.map((m) => m.anchor), [sha('batch 1'), sha('batch 2'), sha('batch 3'), sha('batch 4'), sha('after the crash')]);
  assert.equal(disk.filter((r) => r.state === 'dropped').length, 0);
});

test('the extended record cannot be written: 500, the anchor stays pending, and the next quote settles it first', async (t) => {
  if (skip) { t.skip(skip); return; }
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-commit-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  let failExtendedRecord = false;
  const service = await startBmcService({
    stateDir, host: '127.0.0.1', port: 0,
    faults: { anchorLog: { beforeWrite: (line) => {
      if (failExtendedRecord && line.includes('"pcrValue"')) { failExtendedRecord = false; throw Object.assign(new Error('input/output error'), { code: 'EIO' }); }
    } } },
  });
  cleanups.push(() => service.close());
  const host = clientFor(service, service.tokens.host);
  await host.anchor(sha('one'));
  failExtendedRecord = true;
  const r = await host.request('POST', '/redfish/v1/Oem/Vigil/Anchors', { Anchor: sha('two') });
  assert.equal(r.status, 500);
  assert.match(JSON.stringify(r.body), /anchor 2 was extended into PCR 23 but could not be recorded as extended \(cannot write the anchor list .*: EIO\); it stays pending/);
  const list = await assertListExplainsPcr(service);
  assert.deepEqual(list.map((m) => m.anchor), [sha('one'), sha('two')], 'settled as extended before the quote');
});

test('an anchor list on a full filesystem refuses anchoring without extending the PCR', async (t) => {
  if (skip) { t.skip(skip); return; }
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a small tmpfs (root ignores permission bits, so a full filesystem is how its writes fail)'); return; }
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-full-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'vigil-test', stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) { t.skip(`cannot mount a tmpfs: ${(e as Error).message}`); return; }
  cleanups.push(() => { execFileSync('umount', [stateDir]); });
  const service = await startBmcService({ stateDir, host: '127.0.0.1', port: 0 });
  cleanups.push(() => service.close());
  const host = clientFor(service, service.tokens.host);
  const pcrBefore = await service.tpm.readPcr(PCR);

  // Fill the filesystem to the last byte.
  const filler = join(stateDir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try { writeSync(fd, chunk, 0, size); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break; throw e; }
      }
    }
  } finally { closeSync(fd); }

  const r = await host.request('POST', '/redfish/v1/Oem/Vigil/Anchors', { Anchor: sha('refused') });
  assert.equal(r.status, 500);
  assert.match(JSON.stringify(r.body), /anchor refused and not extended: cannot write the anchor list .*anchors\.jsonl: ENOSPC/);
  assert.deepEqual(await service.tpm.readPcr(PCR), pcrBefore, 'the PCR was not extended');
  assert.equal(readFileSync(join(stateDir, 'anchors.jsonl'), 'utf8'), '', 'no partial record left behind');

  unlinkSync(filler);
  await host.anchor(sha('accepted'));
  const list = await assertListExplainsPcr(service);
  assert.deepEqual(list.map((m) => m.anchor), [sha('accepted')]);
});

test('an anchor still pending when its TPM epoch ends (the BMC\'s own swtpm restarts with a TPM reset) is dropped: no quote covered it', async (t) => {
  if (skip) { t.skip(skip); return; }
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-epoch-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await startBmcService({
    stateDir, host: '127.0.0.1', port: 0,
    // The TPM connection fails right after the extend: the anchor cannot be settled.
    faults: { anchoring: { extended: (seq) => { if (seq === 2) throw new Error('simulated loss of the TPM after PCR_Extend'); } } },
  });
  const host = clientFor(first, first.tokens.host);
  await host.anchor(sha('one'));
  assert.equal((await host.request('POST', '/redfish/v1/Oem/Vigil/Anchors', { Anchor: sha('two') })).status, 500);
  await first.close();
  assert.equal(records(stateDir).at(-1)?.state, 'pending');

  const second = await startBmcService({ stateDir, host: '127.0.0.1', port: 0 });
  cleanups.push(() => second.close());
  const dropped = records(stateDir).at(-1) as Record & { reason?: string };
  assert.deepEqual([dropped.seq, dropped.state, dropped.anchor], [2, 'dropped', sha('two')]);
  assert.match(dropped.reason ?? '', /the TPM was reset or restarted \(reset \d+→\d+/);
  const list = await assertListExplainsPcr(second);
  assert.deepEqual(list.map((m) => m.anchor), [sha('one')], 'the earlier epoch keeps its one settled anchor');
});

test('a pending anchor the PCR cannot explain (something else extended it): the BMC starts, serves its list, and refuses anchors and quotes saying why', async (t) => {
  if (skip) return t.skip(skip);
  const env = await startSwtpm({ provision: true });
  cleanups.push(() => env.close());
  await env.client.close();
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-foreign-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const bmc = await startCrashingBmc(stateDir, env, 'pendingRecorded', 2);
  const host = new BmcApiClient(bmc.url, bmc.hostToken, { pinSha256: bmc.pin });
  await host.anchor(sha('first'));
  await assert.rejects(host.anchor(sha('second')), (e: unknown) => e instanceof BmcApiError && e.status === 0);
  await bmc.exited;
  // Another user of the TPM extends the anchor PCR while anchor 2 is pending.
  await env.client.pcrExtend(PCR, [{ hashAlg: Alg.SHA256, digest: Buffer.from(sha('foreign'), 'hex') }]);
  await env.client.close();

  const service = await startBmcService({ stateDir, host: '127.0.0.1', port: 0, source: { kind: 'swtpm-unix', path: env.swtpm.sockets?.data ?? '' } });
  try {
    assert.match(service.unsettled ?? '', /PCR 23 holds [0-9a-f]{64}, which is neither the value before pending anchor 2/);
    const verifier = clientFor(service, service.tokens.verifier);
    const list = (await verifier.anchors()).Members;
    assert.equal(list[0]?.anchor, sha('first'), 'the list is served');
    assert.match((await verifier.endorsementKey()).certificatePem ?? '', /BEGIN CERTIFICATE/, 'the EK certificate is served');
    const refused = (e: unknown) => e instanceof BmcApiError && e.status === 500 && /neither the value before pending anchor 2/.test(e.message);
    await assert.rejects(clientFor(service, service.tokens.host).anchor(sha('third')), refused);
    await assert.rejects(verifier.signedMeasurements(randomBytes(32), [{ hashAlg: Alg.SHA256, pcrs: [PCR] }]), refused);
  } finally { await service.close(); }
});
