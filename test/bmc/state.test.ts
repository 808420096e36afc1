// The BMC's state directory against a real swtpm: a damaged AK file is reported with its
// path, what is wrong and what to do; and the ECC P-256 EK (--ek-alg ecc) comes with a
// certificate from the local CA, like the RSA one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcTpm } from '../../src/bmc/bmc-tpm.js';
import { BmcError, startBmcService } from '../../src/bmc/index.js';
import { clientFor } from './bmc-fixture.js';
import { checkEkCertificate, haveProgram, makeCredential, publicKeyFromTpm, samePublicKey } from '../../src/tpm/index.js';

let skip: string | undefined;
const dirs: string[] = [];

before(async () => {
  const missing: string[] = [];
  for (const p of ['swtpm', 'swtpm_setup', 'swtpm_localca']) if (!(await haveProgram(p))) missing.push(p);
  if (missing.length) skip = `not installed: ${missing.join(', ')} (scripts/bootstrap.sh installs swtpm and swtpm-tools)`;
});
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vigil-bmc-state-'));
  dirs.push(d);
  return d;
}

test('a damaged ak.json is refused naming the file, what is wrong and that deleting it re-creates the AK', async (t) => {
  if (skip) { t.skip(skip); return; }
  const stateDir = tempDir();
  const akPath = join(stateDir, 'ak.json');
  const open = () => BmcTpm.open({ stateDir, source: { kind: 'swtpm' } });
  const first = await open();
  const akName = first.ak.name;
  await first.close();
  const good = readFileSync(akPath, 'utf8');
  const stored = JSON.parse(good) as { algorithm: string; outPrivate: string; outPublic: string };
  const flipped = Buffer.from(stored.outPrivate, 'base64');
  flipped[flipped.length - 1] ^= 0x01;

  const cases: [string, string, RegExp][] = [
    ['truncated', good.slice(0, 40), /is not JSON/],
    ['not an object', '[1, 2]', /does not hold a JSON object/],
    ['unknown algorithm', JSON.stringify({ ...stored, algorithm: 'dsa' }), /has algorithm "dsa", expected "rsa" or "ecc"/],
    ['missing outPrivate', JSON.stringify({ algorithm: stored.algorithm, outPublic: stored.outPublic }), /has no Base64 string in outPrivate/],
    ['outPublic not Base64', JSON.stringify({ ...stored, outPublic: 'not base64!' }), /has no Base64 string in outPublic/],
    ['outPublic not a TPMT_PUBLIC', JSON.stringify({ ...stored, outPublic: Buffer.from([0, 0x23, 0, 0x0b]).toString('base64') }), /outPublic that is not a TPMT_PUBLIC/],
    ['outPrivate altered', JSON.stringify({ ...stored, outPrivate: flipped.toString('base64') }), /does not load under this TPM's rsa EK \(TPM2_Load failed: TPM_RC_/],
  ];
  for (const [name, content, what] of cases) {
    writeFileSync(akPath, content);
    await assert.rejects(open(), (e: unknown) => {
      assert.ok(e instanceof BmcError, `${name}: a BmcError, got ${String(e)}`);
      assert.equal(e.code, 'BMC_STATE', name);
      assert.ok(e.message.includes(akPath), `${name}: names the file: ${e.message}`);
      assert.match(e.message, what, name);
      assert.match(e.message, /delete it to create a new AK/, name);
      assert.doesNotMatch(e.message, /cannot bring up the TPM/, name);
      return true;
    }, name);
  }

  writeFileSync(akPath, good);
  const restored = await open();
  assert.deepEqual(restored.ak.name, akName, 'the intact file loads the same AK');
  await restored.close();
  unlinkSync(akPath);
  const renewed = await open();
  assert.notDeepEqual(renewed.ak.name, akName, 'deleting the file creates a new AK');
  await renewed.close();
});

test('--ek-alg ecc: the BMC serves a P-256 EK certificate from the local CA, and credential activation uses that EK', async (t) => {
  if (skip) { t.skip(skip); return; }
  const stateDir = tempDir();
  const service = await startBmcService({ stateDir, host: '127.0.0.1', port: 0, ekAlgorithm: 'ecc' });
  try {
    const verifier = clientFor(service, service.tokens.verifier);
    const ek = await verifier.endorsementKey();
    assert.equal(ek.algorithm, 'ecc');
    assert.ok(ek.certificatePem, 'CertificateString is served');
    const cert = new X509Certificate(ek.certificatePem);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(samePublicKey(cert.publicKey, publicKeyFromTpm(ek.public)), 'the certificate is for the EK the BMC uses');
    const issuer = new X509Certificate(readFileSync(join(stateDir, 'ca', 'issuercert.pem')));
    assert.ok(cert.checkIssued(issuer) && cert.verify(issuer.publicKey), 'signed by the local CA');
    const caPems = ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => readFileSync(join(stateDir, 'ca', f), 'utf8'));
    checkEkCertificate(cert.raw, { public: ek.public, bytes: ek.publicBytes }, caPems);

    const ak = await verifier.attestationKey();
    const secret = randomBytes(32);
    const mc = makeCredential(ek.public, ak.name, secret);
    assert.deepEqual(await verifier.activateCredential(mc.credentialBlob, mc.secret), secret);
  } finally { await service.close(); }
});
