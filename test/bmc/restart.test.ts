// `vigil bmc` after kill -9 (issue 10, point 2): the swtpm it owns dies with it
// (--terminate), a restart cleans up whatever is left (pidfile, /proc) and succeeds, no
// process is left behind, every acknowledged anchor is still listed, and the list
// replays to the PCR. A start that fails ends the process (non-zero) without leaving an
// swtpm behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BmcApiClient, BmcApiError, BmcError, startBmcService, type AnchorEntry } from '../../src/bmc/index.js';
import { Alg, replayPcr, unmarshalPublic, verifyQuote } from '../../src/tpm/index.js';
import { missingPrograms } from '../tpm/swtpm-fixture.js';

const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let skip: string | undefined;
const children: ChildProcess[] = [];
let stateDir = '';

before(async () => {
  skip = await missingPrograms(['swtpm', 'swtpm_setup', 'swtpm_localca', 'openssl']);
  stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-restart-'));
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
});

/** Processes (other than us) whose command line mentions `dir`: swtpm or BMC left behind. */
function processesFor(dir: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try { if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) found.push(pid); } catch { /* gone */ }
  }
  return found;
}

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Bmc { child: ChildProcess; url: string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; output: () => string }

/** Starts `vigil bmc` on a free loopback port; resolves once it prints its URL. */
async function startBmc(dir: string): Promise<Bmc> {
  const child = spawn(process.execPath, [cliPath, 'bmc', '--state-dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`vigil bmc did not start within 60 s:\n${out}`)), 60_000);
    const check = () => { const m = /listening on (https:\/\/\S+)/.exec(out); if (m?.[1]) { clearTimeout(timer); resolveUrl(m[1]); } };
    child.stdout?.on('data', check);
    void exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`vigil bmc ended (${code ?? signal}) before listening:\n${out}`)); });
  });
  return { child, url, exited, output: () => out };
}

function clients(dir: string, url: string): { host: BmcApiClient; verifier: BmcApiClient } {
  const pinSha256 = readFileSync(join(dir, 'tls-cert.sha256'), 'utf8').trim();
  const token = (role: string) => readFileSync(join(dir, 'tokens', `${role}.token`), 'utf8').trim();
  return { host: new BmcApiClient(url, token('host'), { pinSha256 }), verifier: new BmcApiClient(url, token('verifier'), { pinSha256 }) };
}

test('kill -9 of the BMC five times in a row during anchoring: every restart succeeds, nothing is left running, no acknowledged anchor is lost, and the list replays to the PCR', async (t) => {
  if (skip) { t.skip(skip); return; }
  const acknowledged: AnchorEntry[] = [];
  for (let round = 1; round <= 5; round++) {
    const bmc = await startBmc(stateDir);
    const { host } = clients(stateDir, bmc.url);
    // Anchoring in flight, four at a time, until the BMC is killed.
    const before = acknowledged.length;
    let killed = false;
    const workers = [0, 1, 2, 3].map(async (w) => {
      for (let i = 0; !killed; i++) {
        try { acknowledged.push(await host.anchor(sha(`round ${round} worker ${w} anchor ${i}`))); } catch (e) {
          if (e instanceof BmcApiError && e.status === 0 && killed) return;
          throw e;
        }
      }
    });
    await waitFor('some anchors acknowledged in this round', () => acknowledged.length >= before + 3, 60_000);
    killed = true;
    bmc.child.kill('SIGKILL');
    assert.equal((await bmc.exited).signal, 'SIGKILL');
    await Promise.all(workers);
    // The swtpm ends with its only connection (--terminate): nothing of this state directory keeps running.
    await waitFor(`no process left on ${stateDir} after kill -9 number ${round}`, () => processesFor(stateDir).length === 0);
  }

  const bmc = await startBmc(stateDir);
  assert.doesNotMatch(bmc.output(), /refused/, 'the restarted BMC serves anchors and quotes');
  const { host, verifier } = clients(stateDir, bmc.url);
  await host.anchor(sha('after five crashes'));
  const list = (await verifier.anchors()).Members;
  assert.deepEqual(list.map((m) => m.seq), list.map((_m, i) => i + 1), 'seq stays 1, 2, 3, ...');
  const bySeq = new Map(list.map((m) => [m.seq, m]));
  for (const a of acknowledged) assert.deepEqual(bySeq.get(a.seq), a, `acknowledged anchor ${a.seq} is listed as acknowledged`);
  // A verifier's check: the quoted PCR is the replay of this epoch's anchors.
  const ak = await verifier.attestationKey();
  const ek = await verifier.endorsementKey();
  const nonce = randomBytes(32);
  const sm = await verifier.signedMeasurements(nonce);
  const pcrSelection = [{ hashAlg: Alg.SHA256, pcrs: [23] }];
  const a = verifyQuote(unmarshalPublic(ak.publicBytes), sm.attest, sm.signature, { nonce, ekName: ek.name, pcrSelection });
  const epoch = list.filter((m) => m.resetCount === a.clockInfo.resetCount);
  assert.ok(epoch.length >= 1);
  verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName: ek.name, pcrSelection, pcrValues: new Map([[Alg.SHA256, new Map([[23, replayPcr(Alg.SHA256, epoch.map((m) => Buffer.from(m.anchor, 'hex')))]])]]) });

  bmc.child.kill('SIGTERM');
  assert.deepEqual(await bmc.exited, { code: 0, signal: null }, 'SIGTERM stops it in order');
  await waitFor('no process left after SIGTERM', () => processesFor(stateDir).length === 0);
});

test('a BMC whose start fails exits non-zero on its own and leaves no swtpm behind', async (t) => {
  if (skip) { t.skip(skip); return; }
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bmc-fail-'));
  try {
    // A damaged AK file fails the start after swtpm is up and the TPM started.
    writeFileSync(join(dir, 'ak.json'), '{"algorithm": "ecc", "outPrivate": "AAAA", "outPublic": "AAAA"}\n', { mode: 0o600 });
    const child = spawn(process.execPath, [cliPath, 'bmc', '--state-dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), 90_000); })]);
    clearTimeout(timer);
    assert.notEqual(code, 'hung', `the failed BMC did not exit: ${err}`);
    assert.equal(code, 1);
    assert.match(err, /the attestation key file .*ak\.json/);
    await waitFor('no swtpm left after the failed start', () => processesFor(dir).length === 0);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a second BMC on a state directory a live BMC serves is refused, and does not kill the first one\'s swtpm', async (t) => {
  if (skip) { t.skip(skip); return; }
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bmc-twice-'));
  try {
    const first = await startBmc(dir);
    const swtpmBefore = processesFor(dir).filter((pid) => pid !== first.child.pid);
    assert.equal(swtpmBefore.length, 1, 'the first BMC runs one swtpm');
    await assert.rejects(startBmcService({ stateDir: dir, host: '127.0.0.1', port: 0 }),
      (e: unknown) => e instanceof BmcError && e.code === 'BMC_STATE' && new RegExp(`another BMC \\(pid ${first.child.pid}\\) serves the state directory`).test(e.message));
    assert.deepEqual(processesFor(dir).filter((pid) => pid !== first.child.pid), swtpmBefore, 'its swtpm is untouched');
    const { host } = clients(dir, first.url);
    assert.equal((await host.anchor(sha('still served'))).seq, 1);
    first.child.kill('SIGTERM');
    assert.equal((await first.exited).code, 0);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
