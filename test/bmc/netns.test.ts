// The BMC in its own network namespace, reached only over a veth pair on a /30 of its
// own: the out-of-band management network in miniature. The service (and the swtpm it
// starts) run inside the namespace; this process, playing host and verifier, talks to
// the namespace's address only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BmcApiClient } from '../../src/bmc/index.js';
import { Alg, haveProgram, replayPcr, verifyQuote } from '../../src/tpm/index.js';

const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const id = process.pid % 10000;
const subnet = 20 + (process.pid % 200);          // 10.200.<subnet>.0/30
const nsName = `vigil-bmc-${id}`;
const hostIf = `vbh${id}`;
const nsIf = `vbn${id}`;
const hostAddr = `10.200.${subnet}.1`;
const bmcAddr = `10.200.${subnet}.2`;
const port = 8443;

let skip: string | undefined;
let stateDir = '';
let bmc: ChildProcess | undefined;
let netnsCreated = false;

function ip(...args: string[]): void { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }); }

function teardownNetwork(): void {
  if (!netnsCreated) return;
  try { ip('link', 'del', hostIf); } catch { /* removed with the namespace */ }
  try { ip('netns', 'del', nsName); } catch { /* already gone */ }
  netnsCreated = false;
}

before(async () => {
  if (process.getuid?.() !== 0) { skip = 'needs root to create a network namespace'; return; }
  for (const p of ['ip', 'swtpm', 'swtpm_setup']) if (!(await haveProgram(p))) { skip = `not installed: ${p}`; return; }
  try {
    ip('netns', 'add', nsName);
    netnsCreated = true;
  } catch (e) { skip = `cannot create a network namespace: ${(e as Error).message}`; return; }
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  ip('link', 'set', nsIf, 'netns', nsName);
  ip('addr', 'add', `${hostAddr}/30`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('netns', 'exec', nsName, 'ip', 'addr', 'add', `${bmcAddr}/30`, 'dev', nsIf);
  ip('netns', 'exec', nsName, 'ip', 'link', 'set', nsIf, 'up');
  ip('netns', 'exec', nsName, 'ip', 'link', 'set', 'lo', 'up'); // swtpm listens on the namespace's own loopback

  stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-netns-'));
  const child = spawn('ip', ['netns', 'exec', nsName, process.execPath, cliPath, 'bmc', '--state-dir', stateDir, '--listen', `${bmcAddr}:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  bmc = child;
  let output = '';
  await new Promise<void>((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`vigil bmc did not start within 30 s:\n${output}`)), 30_000);
    const onData = (d: Buffer) => { output += d.toString(); if (output.includes('listening on')) { clearTimeout(timer); resolveStart(); } };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`vigil bmc exited with ${code}:\n${output}`)); });
  });
});

after(async () => {
  if (bmc && bmc.exitCode === null) {
    const exited = new Promise((r) => bmc!.once('exit', r));
    bmc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (bmc.exitCode === null) bmc.kill('SIGKILL');
  }
  teardownNetwork();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function canConnect(host: string, p: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.createConnection({ host, port: p });
    s.setTimeout(1000, () => { s.destroy(); r(false); });
    s.once('connect', () => { s.destroy(); r(true); });
    s.once('error', () => r(false));
  });
}

test('the BMC runs in its own network namespace and answers only on its management address', async (t) => {
  if (skip || !bmc) { t.skip(skip ?? 'BMC did not start'); return; }
  const bmcNetns = readlinkSync(`/proc/${bmc.pid}/ns/net`);
  assert.notEqual(bmcNetns, readlinkSync('/proc/self/ns/net'), 'the service is in another network namespace');
  assert.ok(await canConnect(bmcAddr, port), 'reachable over the veth pair');
  assert.equal(await canConnect('127.0.0.1', port), false, 'not on this host\'s loopback');
});

test('over the management network: the host anchors, the verifier quotes and replays', async (t) => {
  if (skip || !bmc) { t.skip(skip ?? 'BMC did not start'); return; }
  // HTTPS over the management network, pinned to the certificate the BMC generated.
  const url = `https://${bmcAddr}:${port}`;
  const pinSha256 = readFileSync(join(stateDir, 'tls-cert.sha256'), 'utf8').trim();
  const host = new BmcApiClient(url, readFileSync(join(stateDir, 'tokens', 'host.token'), 'utf8').trim(), { pinSha256 });
  const verifier = new BmcApiClient(url, readFileSync(join(stateDir, 'tokens', 'verifier.token'), 'utf8').trim(), { pinSha256 });
  for (let i = 0; i < 3; i++) await host.anchor(createHash('sha256').update(`netns batch ${i}`).digest('hex'));
  assert.equal((await host.request('POST', '/redfish/v1/ComponentIntegrity/TPM_0/Actions/ComponentIntegrity.TPMGetSignedMeasurements', { Nonce: 'aa' })).status, 403);
  assert.equal((await verifier.request('POST', '/redfish/v1/Oem/Vigil/Anchors', { Anchor: 'aa'.repeat(32) })).status, 403);
  assert.equal((await verifier.request('GET', '/redfish/v1/Oem/Vigil/Anchors', undefined, null)).status, 401);

  const ak = await verifier.attestationKey();
  const nonce = randomBytes(32);
  const sm = await verifier.signedMeasurements(nonce);
  const list = await verifier.anchors();
  const ekName = (await verifier.endorsementKey()).name;
  const pcrSelection = [{ hashAlg: Alg.SHA256, pcrs: [23] }];
  const a = verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, pcrSelection });
  const epoch = list.Members.filter((m) => m.resetCount === a.clockInfo.resetCount);
  assert.equal(epoch.length, 3);
  verifyQuote(ak.public, sm.attest, sm.signature, {
    nonce, ekName, pcrSelection, pcrValues: new Map([[Alg.SHA256, new Map([[23, replayPcr(Alg.SHA256, epoch.map((m) => Buffer.from(m.anchor, 'hex')))]])]]),
  });
});
