// The verifier's checks that a review found loose (issue 10, points 3, 7, 9, 10), each
// against a real swtpm where the TPM has something to say: a quote over a bank the TPM
// lacks proves nothing; 66-byte qualifying data is valid; the AK's scheme, attributes
// and qualified name are pinned; an EK certificate is checked like a TCG EK credential.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Alg, EccCurve, ObjectAttr, TPM_GENERATED_VALUE, Tag, TpmWriter, akQualifiedName, checkEkCertificate, createAk, createEk, loadAk,
  marshalPcrSelections, publicKeyPem, unmarshalAttest, verifyQuote, verifySignature,
  type EccPublic, type LoadedKey, type TpmPublic,
} from '../../src/tpm/index.js';
import { execFileP, missingPrograms, startSwtpm, type SwtpmEnv } from './swtpm-fixture.js';

let env: SwtpmEnv | undefined;
let skip: string | undefined;
let ek: LoadedKey;
let ak: LoadedKey;

before(async () => {
  skip = await missingPrograms(['swtpm', 'swtpm_setup', 'swtpm_localca', 'openssl']);
  if (skip) return;
  // Provisioned: the SHA-256 bank only, as the BMC's swtpm has.
  env = await startSwtpm({ provision: true });
  ek = await createEk(env.client, 'ecc');
  ak = await loadAk(env.client, ek.handle, await createAk(env.client, ek.handle, 'ecc'));
});
after(async () => { await env?.close(); });

function need(t: { skip(reason: string): void }): SwtpmEnv | undefined {
  if (!env) t.skip(skip ?? 'swtpm did not start');
  return env;
}

const sha256Pcr23 = (v: Buffer) => new Map([[Alg.SHA256, new Map([[23, v]])]]);

test('a quote over a bank the TPM lacks selects nothing, and proves no PCR value', async (t) => {
  const e = need(t); if (!e) return;
  const nonce = randomBytes(32);
  // swtpm has no active SHA-1 bank here: it quietly quotes an empty selection.
  const q = await e.client.quote(ak.handle, nonce, [{ hashAlg: Alg.SHA1, pcrs: [23] }]);
  const a = unmarshalAttest(q.attest);
  assert.ok(a.attested.kind === 'quote' && a.attested.quote.pcrSelect.every((s) => s.pcrs.length === 0), 'the TPM dropped the SHA-1 selection');
  for (const anyValue of [randomBytes(32), Buffer.alloc(32)]) {
    assert.throws(() => verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, ekName: ek.name, pcrValues: sha256Pcr23(anyValue) }),
      /the quote does not cover PCR 23 of bank 0xb .*it proves nothing about that PCR/);
  }
  // The same check passes for a quote that does cover it.
  const good = await e.client.quote(ak.handle, nonce, [{ hashAlg: Alg.SHA256, pcrs: [23] }]);
  const value = (await e.client.pcrRead(Alg.SHA256, [23])).get(23) as Buffer;
  verifyQuote(ak.outPublic.public, good.attest, good.signature, { nonce, ekName: ek.name, pcrValues: sha256Pcr23(value) });
});

test('qualifying data of 65 and 66 bytes (sizeof(TPMT_HA)) is valid in a quote', async (t) => {
  const e = need(t); if (!e) return;
  for (const size of [65, 66]) {
    const nonce = randomBytes(size);
    const q = await e.client.quote(ak.handle, nonce, [{ hashAlg: Alg.SHA256, pcrs: [23] }]);
    assert.equal(unmarshalAttest(q.attest).extraData.length, size);
    verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, ekName: ek.name, pcrSelection: [{ hashAlg: Alg.SHA256, pcrs: [23] }] });
  }
  await assert.rejects(e.client.quote(ak.handle, randomBytes(67), [{ hashAlg: Alg.SHA256, pcrs: [23] }]), /TPM_RC_SIZE/, 'the TPM itself refuses 67');
});

test('qualifiedSigner must be the AK\'s qualified name under the enrolled EK', async (t) => {
  const e = need(t); if (!e) return;
  const nonce = randomBytes(32);
  const q = await e.client.quote(ak.handle, nonce, [{ hashAlg: Alg.SHA256, pcrs: [23] }]);
  assert.deepEqual(unmarshalAttest(q.attest).qualifiedSigner, akQualifiedName(ek.name, ak.name));
  verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, qualifiedSigner: akQualifiedName(ek.name, ak.name) });
  // Another EK (another TPM's, or a substituted enrolment): the signer is not ours.
  const otherEk = await createEk(e.client, 'rsa');
  await e.client.flushContext(otherEk.handle);
  assert.throws(() => verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, ekName: otherEk.name }), /qualifiedSigner [0-9a-f]+ is not the attestation key's qualified name/);
  // The same key material presented with other attributes has another name: refused.
  const relabelled: TpmPublic = { ...ak.outPublic.public, objectAttributes: ak.outPublic.public.objectAttributes | ObjectAttr.noDA };
  assert.throws(() => verifyQuote(relabelled, q.attest, q.signature, { nonce, ekName: ek.name }), /qualifiedSigner .* is not the attestation key's qualified name/);
  assert.throws(() => verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce }), /needs the pinned qualifiedSigner or the EK's name/);
});

/** An ECC P-256 key in software, described as a TPM public area with the given attributes. */
function softwareKey(objectAttributes: number): { pub: EccPublic; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub: EccPublic = {
    type: 'ecc', nameAlg: Alg.SHA256, objectAttributes, authPolicy: Buffer.alloc(0), symmetric: { algorithm: Alg.NULL, keyBits: 0, mode: 0 },
    scheme: { scheme: Alg.ECDSA, hashAlg: Alg.SHA256 }, curveId: EccCurve.NIST_P256, kdf: { scheme: Alg.NULL, hashAlg: 0 },
    x: Buffer.from(jwk.x as string, 'base64url'), y: Buffer.from(jwk.y as string, 'base64url'),
  };
  return { pub, privateKey };
}
function ecdsa(privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'], hashName: string, message: Buffer, hashAlg: number) {
  const sig = sign(hashName, message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { sigAlg: Alg.ECDSA, hashAlg, r: sig.subarray(0, 32), s: sig.subarray(32) } as const;
}

test('verifySignature pins the hash to the key\'s scheme, not the signature\'s', () => {
  const { pub, privateKey } = softwareKey(ObjectAttr.sign);
  const message = Buffer.from('the bytes a TPM signed');
  assert.equal(verifySignature(pub, message, ecdsa(privateKey, 'sha256', message, Alg.SHA256)), true);
  // A valid ECDSA signature, but over SHA-1: the key's scheme says SHA-256.
  assert.equal(verifySignature(pub, message, ecdsa(privateKey, 'sha1', message, Alg.SHA1)), false);
  assert.equal(verifySignature(pub, message, ecdsa(privateKey, 'sha384', message, Alg.SHA384)), false);
  const noScheme: EccPublic = { ...pub, scheme: { scheme: Alg.NULL, hashAlg: 0 } };
  assert.throws(() => verifySignature(noScheme, message, ecdsa(privateKey, 'sha256', message, Alg.SHA256)), /no fixed signing scheme/);
  assert.equal(verifySignature(noScheme, message, ecdsa(privateKey, 'sha256', message, Alg.SHA256), { scheme: Alg.ECDSA, hashAlg: Alg.SHA256 }), true);
});

test('a "quote" signed by a key that is not a restricted, fixed, TPM-generated signing key is refused', () => {
  // An unrestricted signing key can sign any bytes, including bytes that look like a quote.
  const forged = new TpmWriter().u32(TPM_GENERATED_VALUE).u16(Tag.ATTEST_QUOTE).tpm2b(Buffer.alloc(34)).tpm2b(Buffer.from('n'.repeat(16)))
    .u64(1n).u32(1).u32(0).u8(1).u64(0n).bytes(marshalPcrSelections([{ hashAlg: Alg.SHA256, pcrs: [23] }])).tpm2b(Buffer.alloc(32)).toBuffer();
  const full = ObjectAttr.restricted | ObjectAttr.sign | ObjectAttr.fixedTPM | ObjectAttr.fixedParent | ObjectAttr.sensitiveDataOrigin | ObjectAttr.userWithAuth;
  const cases: [number, RegExp][] = [
    [full & ~ObjectAttr.restricted, /lacks the restricted attribute/],
    [full & ~ObjectAttr.fixedTPM, /lacks the fixedTPM attribute/],
    [full & ~ObjectAttr.fixedParent, /lacks the fixedParent attribute/],
    [full & ~ObjectAttr.sensitiveDataOrigin, /lacks the sensitiveDataOrigin attribute/],
    [full & ~ObjectAttr.sign, /lacks the sign attribute/],
    [full | ObjectAttr.decrypt, /has the decrypt attribute/],
  ];
  for (const [attributes, message] of cases) {
    const { pub, privateKey } = softwareKey(attributes);
    assert.throws(() => verifyQuote(pub, forged, ecdsa(privateKey, 'sha256', forged, Alg.SHA256), { nonce: Buffer.from('n'.repeat(16)), qualifiedSigner: Buffer.alloc(0) }), message);
  }
});

// ---- EK certificates ----

async function openssl(dir: string, args: string[]): Promise<void> { await execFileP('openssl', args, { cwd: dir, timeout: 30_000 }); }

/** A CA (key + self-signed certificate) with the given extensions, in `dir`. */
async function makeCa(dir: string, name: string, ext: string, issuer?: string): Promise<string> {
  await openssl(dir, ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  writeFileSync(join(dir, `${name}.ext`), `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${name}\n[e]\n${ext}\n`);
  if (!issuer) {
    await openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-days', '30', '-config', `${name}.ext`, '-extensions', 'e', '-out', `${name}.pem`]);
  } else {
    await openssl(dir, ['pkey', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub.pem`]);
    await openssl(dir, ['x509', '-new', '-force_pubkey', `${name}.pub.pem`, '-subj', `/CN=${name}`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-days', '30', '-extfile', `${name}.ext`, '-extensions', 'e', '-out', `${name}.pem`]);
  }
  return readFileSync(join(dir, `${name}.pem`), 'utf8');
}

/** An EK certificate for `ekPem` issued by `issuer`, with the given extensions; DER. */
async function makeEkCert(dir: string, name: string, ekPem: string, issuer: string, ext: string): Promise<Buffer> {
  writeFileSync(join(dir, 'ek.pub.pem'), ekPem);
  writeFileSync(join(dir, `${name}.ext`), `[e]\n${ext}\n`);
  await openssl(dir, ['x509', '-new', '-force_pubkey', 'ek.pub.pem', '-subj', '/CN=ek', '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-days', '30',
    '-extfile', `${name}.ext`, '-extensions', 'e', '-outform', 'DER', '-out', `${name}.der`]);
  return readFileSync(join(dir, `${name}.der`));
}

test('EK certificates: validity dates, CA basicConstraints and keyUsage, the TCG EKU and SAN are checked', async (t) => {
  const e = need(t); if (!e) return;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-ekcert-'));
  try {
    const ekPem = publicKeyPem(ek.outPublic.public);
    const tcgSan = 'subjectAltName=critical,dirName:tpm\n[tpm]\nm.2.23.133.2.1=id:00001014\nn.2.23.133.2.2=swtpm\nv.2.23.133.2.3=id:20191023';
    const ekExt = `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\nextendedKeyUsage=2.23.133.8.1\n${tcgSan}`;
    const root = await makeCa(dir, 'root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign');
    const good = await makeEkCert(dir, 'good', ekPem, 'root', ekExt);
    checkEkCertificate(good, ek.outPublic, [root]);

    assert.throws(() => checkEkCertificate(good, ek.outPublic, [root], { now: new Date('2200-01-01T00:00:00Z') }), /the EK certificate "CN=ek" expired on/);
    assert.throws(() => checkEkCertificate(good, ek.outPublic, [root], { now: new Date('2000-01-01T00:00:00Z') }), /is not valid before/);

    const notCa = await makeCa(dir, 'notca', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign', 'root');
    const underNotCa = await makeEkCert(dir, 'undernotca', ekPem, 'notca', ekExt);
    assert.throws(() => checkEkCertificate(underNotCa, ek.outPublic, [root], { intermediates: [notCa] }), /the intermediate CA "CN=notca" signed the chain but is not a CA/);

    const noCertSign = await makeCa(dir, 'nocertsign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature', 'root');
    const underNoCertSign = await makeEkCert(dir, 'undernocertsign', ekPem, 'nocertsign', ekExt);
    assert.throws(() => checkEkCertificate(underNoCertSign, ek.outPublic, [root], { intermediates: [noCertSign] }), /"CN=nocertsign" signed the chain but its keyUsage does not allow keyCertSign/);
    // A good intermediate is followed to the trust anchor; alone it is no anchor.
    const inter = await makeCa(dir, 'inter', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign', 'root');
    const underInter = await makeEkCert(dir, 'underinter', ekPem, 'inter', ekExt);
    checkEkCertificate(underInter, ek.outPublic, [root], { intermediates: [inter] });
    assert.throws(() => checkEkCertificate(underInter, ek.outPublic, [], { intermediates: [inter, root] }), /not signed by any trusted CA/);

    const serverEku = await makeEkCert(dir, 'servereku', ekPem, 'root', ekExt.replace('extendedKeyUsage=2.23.133.8.1', 'extendedKeyUsage=serverAuth'));
    assert.throws(() => checkEkCertificate(serverEku, ek.outPublic, [root]), /extendedKeyUsage \(1\.3\.6\.1\.5\.5\.7\.3\.1\) does not include tcg-kp-EKCertificate/);
    const signingKu = await makeEkCert(dir, 'signingku', ekPem, 'root', ekExt.replace('keyUsage=critical,keyAgreement', 'keyUsage=critical,digitalSignature'));
    assert.throws(() => checkEkCertificate(signingKu, ek.outPublic, [root]), /keyUsage does not allow keyAgreement/);
    const dnsSan = await makeEkCert(dir, 'dnssan', ekPem, 'root', ekExt.replace(tcgSan, 'subjectAltName=DNS:tpm.example'));
    assert.throws(() => checkEkCertificate(dnsSan, ek.outPublic, [root]), /subjectAltName does not name the TPM manufacturer/);
    const ca = await makeEkCert(dir, 'isca', ekPem, 'root', ekExt.replace('CA:FALSE', 'CA:TRUE'));
    assert.throws(() => checkEkCertificate(ca, ek.outPublic, [root]), /the EK certificate is a CA certificate/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
