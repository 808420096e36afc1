// A reset TPM re-extended with a forged history. The BMC runs in its own network namespace
// (HTTPS over a veth pair; test/attest/netns-bmc.ts); its TPM is an swtpm outside the BMC,
// so the attacker on the host can reach its control channel. It anchors a real agent's log with an
// INSECURE alert, and a verifier with --state proves it. Then the attacker:
//   1. resets the TPM (swtpm CMD_INIT: PCRs cleared, resetCount + 1) and extends the
//      anchor PCR directly: the BMC, restarted on its list, refuses to serve quotes from a
//      PCR its list does not explain, and the verifier fails;
//   2. resets it again and brings up a BMC with a fresh anchor list (its AK file copied, so
//      EK and AK still match the pinned ones), then anchors, through that BMC, the
//      checkpoints of a rewritten log in which the alert says NORMAL: list, PCR and log
//      agree with each other, and a verifier without history would accept them. The
//      verifier with --state rejects it: the list no longer holds the anchor it proved last
//      time, and the log no longer holds the checkpoint it verified.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogWriter } from '../../src/log/index.js';
import { Alg, TpmClient } from '../../src/tpm/index.js';
import { ALERTS_ONLY_LOG, startAgent, runVigil } from '../helpers/agent-process.js';
import { missingForContainerTests, runToEnd } from '../helpers/host.js';
import { until } from '../helpers/wait.js';
import { startSwtpm, type SwtpmEnv } from '../tpm/swtpm-fixture.js';
import { createBmcNamespace, netnsUnavailable, type BmcNamespace, type NetnsBmc } from './netns-bmc.js';

let skip = missingForContainerTests();
let work = '';
let env: SwtpmEnv | undefined;
let ns: BmcNamespace | undefined;
let trust = '';

interface Line { raw: string; o: { seq?: number; container?: { id: string }; verdict?: { level: string }; seal?: { checkpoint: string; firstSeq: number; lastSeq: number } } }
function lines(dir: string): Line[] {
  const out: Line[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('segment-')).sort()) {
    for (const raw of readFileSync(join(dir, f), 'utf8').split('\n').slice(0, -1)) out.push({ raw, o: JSON.parse(raw) as Line['o'] });
  }
  return out;
}

before(async () => {
  skip ??= await netnsUnavailable();
  if (skip) { process.stdout.write(`# TPM reset test skipped: ${skip}\n`); return; }
  ns = createBmcNamespace('rst');
  work = mkdtempSync(join(tmpdir(), 'vreset-'));
  env = await startSwtpm({ provision: true });
  await env.client.close(); // the BMC is the TPM's only user
  trust = join(work, 'trust.pem');
  writeFileSync(trust, env.caCertificates.join('\n'));
});
after(async () => {
  await ns?.close();
  await env?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// The BMC, in its namespace, on the swtpm's data socket (a unix socket: reachable from the namespace through the file system).
const bmcOn = (stateDir: string): Promise<NetnsBmc> => (ns as BmcNamespace).startBmc({ stateDir, port: 8443, tpm: `swtpm-unix:${env?.swtpm.sockets?.data ?? ''}` });

async function verifyCli(bmc: NetnsBmc, logDir: string, state: string): Promise<{ code: number | null; out: string }> {
  const r = await runVigil(['verify', '--bmc', bmc.url, '--token', bmc.tokenFiles.verifier, '--pin', bmc.pinSha256, '--log', logDir, '--trust', trust, '--state', state]);
  return { code: r.code, out: `${r.stdout}${r.stderr}` };
}

/** The TPM reset an attacker with the TPM's control channel can cause (a power cycle), then Startup(CLEAR). */
async function resetTpm(): Promise<TpmClient> {
  await env?.swtpm.control().init();
  const client = new TpmClient(env?.swtpm.transport() as ReturnType<SwtpmEnv['swtpm']['transport']>);
  await client.startup('clear');
  return client;
}

test('a TPM reset and a forged history re-extended into the anchor PCR are rejected', async (t) => {
  if (skip || !env) { t.skip(skip ?? 'no swtpm'); return; }
  const bmcDir = join(work, 'bmc');
  const logDir = join(work, 'log');
  const state = join(work, 'state');
  let bmc = await bmcOn(bmcDir);
  try {
    // The genuine history: an alert, anchored; verified with a state.
    // --program-check-ms 0: as in tamper.test.ts, another agent's programs on a shared machine must not decide this test.
    const agent = await startAgent(['--log', logDir, '--bmc', bmc.url, '--bmc-token', bmc.tokenFiles.host, '--bmc-pin', bmc.pinSha256,
      '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '1', '--program-check-ms', '0', ALERTS_ONLY_LOG], 120_000);
    let alertSeq = 0;
    try {
      const id = runToEnd('vigil-reset', 'cat /etc/passwd >/dev/null; echo done');
      alertSeq = (await until('the alert in the log', () => lines(logDir).find((l) => l.o.container?.id === id && l.o.verdict?.level === 'INSECURE'))).o.seq ?? 0;
      const client = bmc.client('verifier');
      await until('the alert anchored', async () => {
        const seal = lines(logDir).find((l) => l.o.seal && l.o.seal.lastSeq >= alertSeq);
        return seal && (await client.anchors()).Members.some((m) => m.anchor === seal.o.seal?.checkpoint);
      }, 10_000);
    } finally {
      assert.equal((await agent.stop()).code, 0, agent.stderr());
    }
    const genuine = await verifyCli(bmc, logDir, state);
    assert.equal(genuine.code, 0, genuine.out);
    const genuineAnchors = (await bmc.client('verifier').anchors()).Members.length;

    // The forged log: the same entries, the alert turned NORMAL, re-chained and sealed one
    // entry per batch (so its anchors outnumber the genuine ones) by the log library itself.
    const forged = join(work, 'forged');
    const w = LogWriter.open(forged, { batchSize: 1, batchMs: 3_600_000 });
    for (const l of lines(logDir)) {
      if (l.o.seal) continue;
      const { chain: _chain, ...rest } = JSON.parse(l.raw) as Record<string, unknown>;
      if (rest.seq === alertSeq) (rest.verdict as { level: string; rules: string[] }) = { ...(rest.verdict as { level: string; rules: string[] }), level: 'NORMAL', rules: [] };
      w.append(rest as { seq: number });
    }
    w.close();
    const forgedCheckpoints = lines(forged).flatMap((l) => (l.o.seal ? [l.o.seal.checkpoint] : []));
    assert.ok(forgedCheckpoints.length > genuineAnchors, `${forgedCheckpoints.length} forged anchors against ${genuineAnchors} genuine`);

    // 1. Reset the TPM and extend the forged history straight into PCR 23; the BMC restarts on its own list.
    await bmc.stop();
    const tpm = await resetTpm();
    for (const c of forgedCheckpoints) await tpm.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: Buffer.from(c, 'hex') }]);
    await tpm.close();
    bmc = await bmcOn(bmcDir);
    const copy = join(work, 'state-copy');
    cpSync(state, copy, { recursive: true });
    const direct = await verifyCli(bmc, forged, copy);
    assert.equal(direct.code, 1, direct.out);
    assert.match(direct.out, /FAILED \(bmc\): asking for a quote: .*does not replay to PCR 23: the PCR holds [0-9a-f]{64}, but the list has no anchor in this TPM epoch/);
    await bmc.stop();

    // 2. Reset again; a BMC with a fresh anchor list on the same TPM (its AK file kept),
    // and the forged checkpoints anchored through it.
    (await resetTpm()).close();
    const freshDir = join(work, 'bmc-fresh');
    mkdirSync(freshDir, { mode: 0o700 });
    copyFileSync(join(bmcDir, 'ak.json'), join(freshDir, 'ak.json'));
    bmc = await bmcOn(freshDir);
    const host = bmc.client('host');
    for (const c of forgedCheckpoints) await host.anchor(c);
    // Without history the forgery is self-consistent: a first verification accepts it
    // (the trust-on-first-use limit, as for the pinned keys; docs/attestation.md).
    // Right after a reset without an orderly shutdown the TPM reports its clock unsafe, until
    // it has saved a later clock (about 4 s on swtpm): an attacker waits for that, so do we.
    const naive = await until('the TPM clock safe again after the reset', async () => {
      const v = await verifyCli(bmc, forged, join(work, 'state-naive'));
      return v.out.includes('FAILED (clock)') ? undefined : v;
    }, 60_000, 1000);
    assert.equal(naive.code, 0, naive.out);
    // With the state of the genuine verification it is rejected.
    const r = await verifyCli(bmc, forged, state);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /FAILED \(history\): the BMC's anchor list no longer holds anchor #\d+ \(checkpoint [0-9a-f]{64}, TPM reset \d+\) that the last verification \([^)]+\) proved: .*\(resetCount \d+ → \d+\)/);
    // The genuine log against the forged list fails too (its anchors are not in the list).
    const g = await verifyCli(bmc, logDir, join(work, 'state-naive'));
    assert.equal(g.code, 1, g.out);
  } finally {
    await bmc.stop();
  }
});
