// The BMC service on loopback with a real swtpm: roles and tokens, request validation,
// and the verifier's whole check (EK certificate, credential activation, quote, anchor
// replay), across a restart of the service.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcApiClient, Paths, startBmcService, type AnchorEntry, type BmcService } from '../../src/bmc/index.js';
import { clientFor } from './bmc-fixture.js';
import {
  Alg, checkEkCertificate, ekTemplateRsa2048, haveProgram, makeCredential, marshalPcrSelections, replayPcr, verifyQuote,
} from '../../src/tpm/index.js';

let stateDir = '';
let service: BmcService | undefined;
let skip: string | undefined;

async function start(): Promise<BmcService> {
  return startBmcService({ stateDir, host: '127.0.0.1', port: 0 });
}

before(async () => {
  const missing: string[] = [];
  for (const p of ['swtpm', 'swtpm_setup', 'swtpm_localca']) if (!(await haveProgram(p))) missing.push(p);
  if (missing.length) skip = `not installed: ${missing.join(', ')} (scripts/bootstrap.sh installs swtpm and swtpm-tools)`;
  if (skip) return;
  stateDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-test-'));
  service = await start();
});
after(async () => {
  await service?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function clients(s: BmcService) {
  return { host: clientFor(s, s.tokens.host), verifier: clientFor(s, s.tokens.verifier), anonymous: clientFor(s, undefined) };
}
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const quoteBody = { Nonce: '00'.repeat(16) };
const activateBody = { CredentialBlob: 'AAAA', Secret: 'AAAA' };

test('tokens are generated into the state directory, owner-only', (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  for (const f of readdirSync(join(stateDir, 'tokens'))) assert.equal(statSync(join(stateDir, 'tokens', f)).mode & 0o777, 0o600, f);
  assert.equal(statSync(join(stateDir, 'tokens')).mode & 0o777, 0o700);
  assert.equal(readFileSync(service.tokenFiles.host, 'utf8').trim(), service.tokens.host);
  assert.notEqual(service.tokens.host, service.tokens.verifier);
});

test('unauthenticated requests get 401, the service root stays public', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { anonymous } = clients(service);
  assert.equal((await anonymous.request('GET', Paths.root)).status, 200);
  const protectedCalls: [('GET' | 'POST'), string, unknown][] = [
    ['GET', Paths.componentIntegrity, undefined], ['GET', Paths.tpm, undefined], ['GET', Paths.ekCertificate, undefined],
    ['GET', Paths.attestationKey, undefined], ['POST', Paths.getSignedMeasurements, quoteBody], ['POST', Paths.activateCredential, activateBody],
    ['POST', Paths.anchors, { Anchor: sha('x') }], ['GET', Paths.anchors, undefined],
  ];
  for (const [method, path, body] of protectedCalls) {
    const r = await anonymous.request(method, path, body, null);
    assert.equal(r.status, 401, `${method} ${path} without a token`);
    const bogus = await anonymous.request(method, path, body, 'not-a-token-of-this-bmc');
    assert.equal(bogus.status, 401, `${method} ${path} with an unknown token`);
  }
});

test('the host may only append anchors; the verifier may not append', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { host, verifier } = clients(service);
  assert.equal((await host.request('POST', Paths.anchors, { Anchor: sha('host anchor') })).status, 201);
  for (const [method, path, body] of [
    ['POST', Paths.getSignedMeasurements, quoteBody], ['GET', Paths.anchors, undefined], ['POST', Paths.activateCredential, activateBody],
    ['GET', Paths.ekCertificate, undefined], ['GET', Paths.attestationKey, undefined], ['GET', Paths.tpm, undefined],
  ] as const) {
    const r = await host.request(method, path, body);
    assert.equal(r.status, 403, `host ${method} ${path}`);
    assert.match(JSON.stringify(r.body), /the host role may not/);
  }
  const r = await verifier.request('POST', Paths.anchors, { Anchor: sha('verifier anchor') });
  assert.equal(r.status, 403);
  assert.equal((await verifier.anchors()).Members.filter((m) => m.anchor === sha('verifier anchor')).length, 0, 'nothing was appended');
});

test('bad request bodies get 400 naming the field', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { host, verifier } = clients(service);
  const before = (await verifier.anchors()).Members.length;
  const cases: [BmcApiClient, string, unknown, RegExp, string][] = [
    [host, Paths.anchors, {}, /Anchor is required/, '#/Anchor'],
    [host, Paths.anchors, { Anchor: 'abc' }, /Anchor must be hex/, '#/Anchor'],
    [host, Paths.anchors, { Anchor: 'ab'.repeat(31) }, /Anchor must be exactly 32 bytes/, '#/Anchor'],
    [host, Paths.anchors, { Anchor: 42 }, /Anchor must be a string/, '#/Anchor'],
    [host, Paths.anchors, { Anchor: sha('a'), Extra: 1 }, /unknown property Extra/, '#/Extra'],
    [host, Paths.anchors, [sha('a')], /must be a JSON object/, '#'],
    [host, Paths.anchors, '{"Anchor": ', /JSON/, '#'],
    [verifier, Paths.getSignedMeasurements, { Nonce: 'ff'.repeat(67) }, /Nonce must be at most 66 bytes/, '#/Nonce'],
    [verifier, Paths.getSignedMeasurements, { Nonce: 'xyz' }, /Nonce must be hex/, '#/Nonce'],
    [verifier, Paths.getSignedMeasurements, { ...quoteBody, PCRSelection: 'not base64!' }, /PCRSelection must be Base64/, '#/PCRSelection'],
    [verifier, Paths.getSignedMeasurements, { ...quoteBody, PCRSelection: Buffer.from([0, 0, 0, 9]).toString('base64') }, /PCRSelection does not decode/, '#/PCRSelection'],
    [verifier, Paths.getSignedMeasurements, { ...quoteBody, Scheme: Buffer.from([0x00, 0x99]).toString('base64') }, /Scheme does not decode/, '#/Scheme'],
    [verifier, Paths.getSignedMeasurements, { ...quoteBody, Certificate: { '@odata.id': '/elsewhere' } }, /Certificate must be/, '#/Certificate'],
    [verifier, Paths.activateCredential, { Secret: 'AAAA' }, /CredentialBlob is required/, '#/CredentialBlob'],
  ];
  for (const [client, path, body, message, field] of cases) {
    const r = await client.request('POST', path, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    const err = (r.body as { error: { message: string; '@Message.ExtendedInfo': { RelatedProperties?: string[] }[] } }).error;
    assert.match(err.message, message);
    assert.deepEqual(err['@Message.ExtendedInfo'][0]?.RelatedProperties, [field]);
  }
  assert.equal((await verifier.anchors()).Members.length, before, 'bad requests appended nothing');
});

/** What a verifier does: check the quote, then replay the anchors of the quoted epoch. */
async function verifyAnchoredState(s: BmcService): Promise<{ resetCount: number; epoch: AnchorEntry[] }> {
  const { verifier } = clients(s);
  const ak = await verifier.attestationKey();
  const ekName = (await verifier.endorsementKey()).name;
  const nonce = randomBytes(32);
  const sm = await verifier.signedMeasurements(nonce, [{ hashAlg: Alg.SHA256, pcrs: [s.anchorPcr] }]);
  const list = await verifier.anchors();
  const attestation = verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, pcrSelection: [{ hashAlg: Alg.SHA256, pcrs: [s.anchorPcr] }] });
  const epoch = list.Members.filter((m) => m.resetCount === attestation.clockInfo.resetCount);
  const expected = replayPcr(Alg.SHA256, epoch.map((m) => Buffer.from(m.anchor, 'hex')));
  verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, pcrSelection: [{ hashAlg: Alg.SHA256, pcrs: [s.anchorPcr] }], pcrValues: new Map([[Alg.SHA256, new Map([[s.anchorPcr, expected]])]]) });
  // A verifier missing one anchor computes another value: withheld entries are found.
  if (epoch.length > 1) {
    const withheld = replayPcr(Alg.SHA256, epoch.slice(1).map((m) => Buffer.from(m.anchor, 'hex')));
    assert.throws(() => verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, pcrValues: new Map([[Alg.SHA256, new Map([[s.anchorPcr, withheld]])]]) }), /PCR digest does not match/);
  }
  return { resetCount: attestation.clockInfo.resetCount, epoch };
}

test('TPMGetSignedMeasurements honours PCRSelection and Scheme', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { verifier } = clients(service);
  const ak = await verifier.attestationKey();
  const ekName = (await verifier.endorsementKey()).name;
  const nonce = randomBytes(20);
  const selection = [{ hashAlg: Alg.SHA256, pcrs: [0, 7, 23] }];
  const sm = await verifier.signedMeasurements(nonce, selection, { scheme: Alg.ECDSA, hashAlg: Alg.SHA256 });
  verifyQuote(ak.public, sm.attest, sm.signature, { nonce, ekName, pcrSelection: selection });
});

test('enrolment: EK certificate chains to the local CA; credential activation works for this EK only', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { verifier } = clients(service);
  const ek = await verifier.endorsementKey();
  const ak = await verifier.attestationKey();
  assert.ok(ek.certificatePem, 'the EK certificate is served');
  const caPems = ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => readFileSync(join(stateDir, 'ca', f), 'utf8'));
  checkEkCertificate(Buffer.from(ek.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64'), { public: ek.public, bytes: ek.publicBytes }, caPems);
  // The AK is restricted, signing, fixedTPM: what makes its quotes trustworthy.
  assert.equal(ak.public.objectAttributes & 0x50072, 0x50072);

  const secret = randomBytes(32);
  const mc = makeCredential(ek.public, ak.name, secret);
  assert.deepEqual(await verifier.activateCredential(mc.credentialBlob, mc.secret), secret);

  // The same protocol aimed at an EK this TPM does not hold (another TPM's key): refused.
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const foreignEk = { ...ekTemplateRsa2048(), modulus: Buffer.from(other.n as string, 'base64url') };
  const foreign = makeCredential(foreignEk, ak.name, secret);
  const r = await verifier.request('POST', Paths.activateCredential, { CredentialBlob: foreign.credentialBlob.toString('base64'), Secret: foreign.secret.toString('base64') });
  assert.equal(r.status, 502);
  assert.match(JSON.stringify(r.body), /TPM2_ActivateCredential failed/);
});

test('anchors extend the PCR; the quote verifies and the anchor list replays to it, across a restart', async (t) => {
  if (!service) { t.skip(skip ?? 'BMC did not start'); return; }
  const { host } = clients(service);
  for (let i = 0; i < 5; i++) {
    const e = await host.anchor(sha(`batch ${i}`));
    assert.equal(e.pcr, 23);
  }
  const first = await verifyAnchoredState(service);
  assert.ok(first.epoch.length >= 5);
  const akName = (await clients(service).verifier.attestationKey()).name;
  // Each anchor is a pending record (written before the extend) and an extended one.
  const records = readFileSync(join(stateDir, 'anchors.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { state?: string });
  const lines = records.filter((r) => r.state === undefined);
  assert.equal(records.filter((r) => r.state === 'pending').length, lines.length, 'every extended anchor was recorded as pending first');
  assert.equal(lines.length, (await clients(service).verifier.anchors()).Members.length, 'every acknowledged anchor is on disk');

  await service.close();
  service = await start();
  const again = clients(service);
  assert.deepEqual((await again.verifier.attestationKey()).name, akName, 'the same AK after a restart');
  assert.equal((await again.verifier.anchors()).Members.length, lines.length, 'the anchor list survived');
  const afterRestart = await verifyAnchoredState(service);
  assert.equal(afterRestart.resetCount, first.resetCount + 1, 'the restart is a TPM reset, visible in the quote');
  assert.equal(afterRestart.epoch.length, 0);
  await again.host.anchor(sha('after restart'));
  const latest = await verifyAnchoredState(service);
  assert.equal(latest.epoch.length, 1);
  assert.deepEqual(marshalPcrSelections([{ hashAlg: Alg.SHA256, pcrs: [23] }]).toString('hex'), '00000001000b03000080');
});
