// Every command of the client against a real swtpm, checked against tpm2-tools where an
// independent implementation can say what the right answer is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Alg, Capability, CommandCode, Handle, NvAttr, NvType, nvTypeAttribute, Property,
  TpmResponseError, createEk, createAk, loadAk, readEkCertificate, checkEkCertificate,
  objectName, nvIndexName, extendPcrValue, hash, verifyQuote, publicKeyPem, marshalSignature,
  EK_POLICY_SHA256, EK_PERSISTENT_HANDLE, EK_CERT_NV_INDEX, policySecretDigest, permanentHandleName, passwordSession,
  publicKeyFromTpm, samePublicKey,
  type LoadedKey,
} from '../../src/tpm/index.js';
import { missingPrograms, startSwtpm, tpm2Tool, type SwtpmEnv } from './swtpm-fixture.js';

let env: SwtpmEnv | undefined;
let skip: string | undefined;

before(async () => {
  skip = await missingPrograms(['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_pcrread', 'tpm2_checkquote', 'tpm2_nvread']);
  if (!skip) env = await startSwtpm({ provision: true, listen: 'tcp' }); // tpm2-tools reach swtpm over TCP only
});
after(async () => { await env?.close(); });

function need(t: { skip(reason: string): void }): SwtpmEnv | undefined {
  if (!env) t.skip(skip ?? 'swtpm did not start');
  return env;
}

test('Startup twice is refused with a decoded TPM_RC_INITIALIZE', async (t) => {
  const e = need(t); if (!e) return;
  await assert.rejects(e.client.startup('clear'), (err: unknown) => {
    assert.ok(err instanceof TpmResponseError);
    assert.equal(err.code, 'TPM_RESPONSE');
    assert.equal(err.detail.name, 'TPM_RC_INITIALIZE');
    assert.equal(err.detail.format, 'format-zero');
    return true;
  });
});

test('GetCapability: fixed properties, commands and the active PCR bank', async (t) => {
  const e = need(t); if (!e) return;
  const family = await e.client.getProperty(Property.FAMILY_INDICATOR);
  assert.equal(Buffer.from([family! >>> 24, (family! >> 16) & 0xff, (family! >> 8) & 0xff, family! & 0xff]).toString('latin1').replace(/\0/g, ''), '2.0');
  const manufacturer = await e.client.getProperty(Property.MANUFACTURER);
  assert.equal(manufacturer, 0x49424d00, 'swtpm reports IBM as manufacturer');
  const cmds = await e.client.getCapability(Capability.COMMANDS, CommandCode.NV_UndefineSpace, 256);
  assert.equal(cmds.data.capability, 'commands');
  if (cmds.data.capability === 'commands') {
    const codes = new Set(cmds.data.commands.map((c) => c & 0xffff));
    for (const cc of [CommandCode.Quote, CommandCode.ActivateCredential, CommandCode.PolicySecret]) assert.ok(codes.has(cc), `command 0x${cc.toString(16)} listed`);
  }
  const pcrs = await e.client.getCapability(Capability.PCRS, 0, 1);
  assert.equal(pcrs.data.capability, 'pcrs');
  if (pcrs.data.capability === 'pcrs') {
    const sha256 = pcrs.data.pcrs.find((b) => b.hashAlg === Alg.SHA256);
    assert.equal(sha256?.pcrs.length, 24, 'swtpm_setup activated the SHA-256 bank with 24 PCRs');
  }
});

test('GetRandom returns the requested number of bytes, in several exchanges when needed', async (t) => {
  const e = need(t); if (!e) return;
  const a = await e.client.getRandom(100);
  const b = await e.client.getRandom(100);
  assert.equal(a.length, 100);
  assert.notDeepEqual(a, b);
});

test('PCR_Extend and PCR_Read agree with software extension and with tpm2_pcrread', async (t) => {
  const e = need(t); if (!e) return;
  const before23 = (await e.client.pcrRead(Alg.SHA256, [23])).get(23)!;
  const d1 = hash(Alg.SHA256, Buffer.from('first anchor'));
  const d2 = hash(Alg.SHA256, Buffer.from('second anchor'));
  await e.client.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: d1 }]);
  await e.client.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: d2 }]);
  const expected = extendPcrValue(Alg.SHA256, extendPcrValue(Alg.SHA256, before23, d1), d2);
  const ours = await e.client.pcrRead(Alg.SHA256, [...Array(24).keys()]);
  assert.equal(ours.size, 24, 'all 24 PCRs read (the TPM answers 8 per exchange)');
  assert.deepEqual(ours.get(23), expected);

  const out = join(e.dir, 'pcrs.bin');
  await tpm2Tool(e, 'tpm2_pcrread', ['sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23', '-o', out]);
  const theirs = readFileSync(out);
  assert.equal(theirs.length, 24 * 32);
  for (let i = 0; i < 24; i++) assert.deepEqual(ours.get(i), theirs.subarray(i * 32, i * 32 + 32), `PCR ${i}`);
});

test('the EK templates derive the keys swtpm_setup certified; the certificate chains to the local CA', async (t) => {
  const e = need(t); if (!e) return;
  // The EK policy constant is PolicySecret(TPM_RH_ENDORSEMENT) computed in software.
  assert.deepEqual(policySecretDigest(Alg.SHA256, permanentHandleName(Handle.ENDORSEMENT)), EK_POLICY_SHA256);
  const ek = await createEk(e.client, 'rsa');
  try {
    assert.deepEqual(objectName(ek.outPublic.public), ek.name, 'software name of the re-marshalled public area equals the TPM\'s');
    const persisted = await e.client.readPublic(EK_PERSISTENT_HANDLE.rsa);
    assert.deepEqual(persisted.name, ek.name, 'same key as the EK swtpm_setup made persistent');
    const cert = await readEkCertificate(e.client, 'rsa');
    assert.ok(cert, 'an RSA EK certificate is in NV');
    const x509 = checkEkCertificate(cert, ek.outPublic, e.caCertificates);
    assert.match(x509.issuer, /CN=/);
  } finally { await e.client.flushContext(ek.handle); }
  const eccEk = await createEk(e.client, 'ecc');
  try {
    assert.equal(eccEk.outPublic.public.type, 'ecc');
    assert.deepEqual(objectName(eccEk.outPublic.public), eccEk.name);
    // swtpm_setup certifies only a P-384 EK; provisionSwtpm adds the L-2 (P-256) one.
    const cert = await readEkCertificate(e.client, 'ecc');
    assert.ok(cert, 'an ECC P-256 EK certificate is in NV at 0x01c0000a');
    const x509 = new X509Certificate(cert);
    assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(samePublicKey(x509.publicKey, publicKeyFromTpm(eccEk.outPublic.public)), 'the certificate is for this TPM\'s P-256 EK');
    const issuer = new X509Certificate(readFileSync(join(e.dir, 'ca', 'issuercert.pem')));
    assert.ok(x509.checkIssued(issuer) && x509.verify(issuer.publicKey), 'signed by the local CA');
    checkEkCertificate(cert, eccEk.outPublic, e.caCertificates);
    const nv = await e.client.nvReadPublic(EK_CERT_NV_INDEX.ecc);
    assert.equal(nv.nvPublic.attributes, (await e.client.nvReadPublic(EK_CERT_NV_INDEX.rsa)).nvPublic.attributes, 'the same NV attributes swtpm_setup gives the RSA EK certificate');
  } finally { await e.client.flushContext(eccEk.handle); }
});

test('NV_Write round-trips through NV_Read, across several NV_BUFFER_MAX pieces and at an offset', async (t) => {
  const e = need(t); if (!e) return;
  const index = 0x01500018;
  const bufferMax = (await e.client.getProperty(Property.NV_BUFFER_MAX)) as number;
  // As large as an index may be, and still more than one NV_Write piece (swtpm: 2048 and 1024).
  const size = (await e.client.getProperty(Property.NV_INDEX_MAX)) as number;
  assert.ok(size > bufferMax + 100, `an index (${size} bytes) spans more than one NV_Write piece (${bufferMax})`);
  const nvPublic = {
    nvIndex: index, nameAlg: Alg.SHA256, authPolicy: Buffer.alloc(0), dataSize: size,
    attributes: (nvTypeAttribute(NvType.ORDINARY) | NvAttr.AUTHWRITE | NvAttr.AUTHREAD | NvAttr.NO_DA) >>> 0,
  };
  await e.client.nvDefineSpace(nvPublic);
  try {
    const data = randomBytes(size);
    await e.client.nvWrite(index, data);
    assert.ok((await e.client.nvReadPublic(index)).nvPublic.attributes & NvAttr.WRITTEN, 'TPMA_NV_WRITTEN set');
    assert.deepEqual(await e.client.nvRead(index), data);
    const patch = Buffer.from('patched in the middle of the second piece');
    await e.client.nvWrite(index, patch, { offset: bufferMax + 10 });
    const expected = Buffer.from(data); patch.copy(expected, bufferMax + 10);
    assert.deepEqual(await e.client.nvRead(index), expected);
    // An independent reader sees the same bytes.
    const out = join(e.dir, 'nv.bin');
    await tpm2Tool(e, 'tpm2_nvread', ['-C', `0x${index.toString(16)}`, '-o', out, `0x${index.toString(16)}`]);
    assert.deepEqual(readFileSync(out), expected, 'tpm2_nvread reads what NV_Write wrote');
    // Past the end of the index: the TPM refuses and names the parameter.
    await assert.rejects(e.client.nvWrite(index, Buffer.alloc(8), { offset: size - 4 }),
      (err: unknown) => err instanceof TpmResponseError && err.detail.name === 'TPM_RC_NV_RANGE');
  } finally { await e.client.nvUndefineSpace(index); }
});

test('NV_DefineSpace, NV_ReadPublic, NV_Extend, NV_Read on an extend index', async (t) => {
  const e = need(t); if (!e) return;
  const index = 0x01500017;
  const nvPublic = {
    nvIndex: index, nameAlg: Alg.SHA256, authPolicy: Buffer.alloc(0), dataSize: 32,
    attributes: (nvTypeAttribute(NvType.EXTEND) | NvAttr.AUTHWRITE | NvAttr.AUTHREAD | NvAttr.NO_DA) >>> 0,
  };
  await e.client.nvDefineSpace(nvPublic);
  try {
    const pub = await e.client.nvReadPublic(index);
    assert.deepEqual(pub.nvPublic, nvPublic);
    assert.deepEqual(pub.name, nvIndexName(nvPublic));
    const data = Buffer.from('log batch root');
    await e.client.nvExtend(index, data);
    const written = await e.client.nvReadPublic(index);
    assert.ok(written.nvPublic.attributes & NvAttr.WRITTEN, 'TPMA_NV_WRITTEN set after the first extend');
    assert.deepEqual(written.name, nvIndexName(written.nvPublic));
    assert.deepEqual(await e.client.nvRead(index), hash(Alg.SHA256, Buffer.alloc(32), data));
  } finally { await e.client.nvUndefineSpace(index); }
  await assert.rejects(e.client.nvReadPublic(index), (err: unknown) => err instanceof TpmResponseError && err.detail.subject?.kind === 'handle' && err.detail.subject.number === 1);
});

test('Create/Load an AK under the EK, persist it with EvictControl, quote, and tpm2_checkquote accepts the quote', async (t) => {
  const e = need(t); if (!e) return;
  for (const alg of ['ecc', 'rsa'] as const) {
    const ek = await createEk(e.client, alg);
    let ak: LoadedKey | undefined;
    try {
      const blob = await createAk(e.client, ek.handle, alg);
      ak = await loadAk(e.client, ek.handle, blob);
      assert.deepEqual(objectName(blob.outPublic.public, blob.outPublic.bytes), ak.name);
      const rp = await e.client.readPublic(ak.handle);
      assert.deepEqual(rp.name, ak.name);
      assert.deepEqual(rp.outPublic.bytes, blob.outPublic.bytes);

      // EvictControl: make it persistent, find it, quote with the persistent handle, evict it.
      const persistent = 0x81000100;
      await e.client.evictControl(ak.handle, persistent);
      assert.ok((await e.client.listHandles(0x81000000)).includes(persistent));
      assert.deepEqual((await e.client.readPublic(persistent)).name, ak.name);

      const nonce = Buffer.from(`nonce for ${alg} quote ....`);
      const selection = [{ hashAlg: Alg.SHA256, pcrs: [0, 16, 23] }];
      const q = await e.client.quote(persistent, nonce, selection);
      await e.client.evictControl(persistent, persistent);
      assert.ok(!(await e.client.listHandles(0x81000000)).includes(persistent));

      const values = await e.client.pcrRead(Alg.SHA256, [0, 16, 23]);
      const a = verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, ekName: ek.name, pcrSelection: selection, pcrValues: new Map([[Alg.SHA256, values]]) });
      assert.ok(a.clockInfo.resetCount >= 0);
      assert.deepEqual(a.qualifiedSigner.length, 34);
      assert.throws(() => verifyQuote(ak!.outPublic.public, q.attest, q.signature, { nonce: Buffer.from('another nonce'), ekName: ek.name }), /different nonce/);
      const tampered = Buffer.from(q.attest); tampered[tampered.length - 1] ^= 1;
      assert.throws(() => verifyQuote(ak!.outPublic.public, tampered, q.signature, { nonce, ekName: ek.name }), /signature does not verify/);

      // The independent check: tpm2_checkquote with PEM key, TPMS_ATTEST message, TPMT_SIGNATURE.
      const dir = e.dir;
      writeFileSync(join(dir, 'ak.pem'), publicKeyPem(ak.outPublic.public));
      writeFileSync(join(dir, 'quote.msg'), q.attest);
      writeFileSync(join(dir, 'quote.sig'), q.signatureBytes);
      assert.deepEqual(marshalSignature(q.signature), q.signatureBytes);
      writeFileSync(join(dir, 'quote.pcrs'), Buffer.concat([values.get(0)!, values.get(16)!, values.get(23)!]));
      const args = ['-u', join(dir, 'ak.pem'), '-m', join(dir, 'quote.msg'), '-s', join(dir, 'quote.sig'), '-g', 'sha256',
        '-f', join(dir, 'quote.pcrs'), '-l', 'sha256:0,16,23'];
      await tpm2Tool(e, 'tpm2_checkquote', [...args, '-q', nonce.toString('hex')]);
      await assert.rejects(tpm2Tool(e, 'tpm2_checkquote', [...args, '-q', Buffer.from('wrong nonce').toString('hex')]), 'tpm2_checkquote refuses another nonce');
    } finally {
      if (ak) await e.client.flushContext(ak.handle).catch(() => undefined);
      await e.client.flushContext(ek.handle);
    }
  }
});

test('quotes carry the TPM reset and restart counters', async (t) => {
  const e = need(t); if (!e) return;
  const ek = await createEk(e.client, 'ecc');
  const blob = await createAk(e.client, ek.handle, 'ecc');
  const quoteNow = async () => {
    const ekNow = await createEk(e.client, 'ecc');
    const ak = await loadAk(e.client, ekNow.handle, blob);
    const nonce = await e.client.getRandom(16);
    const q = await e.client.quote(ak.handle, nonce, [{ hashAlg: Alg.SHA256, pcrs: [23] }]);
    await e.client.flushContext(ak.handle); await e.client.flushContext(ekNow.handle);
    return verifyQuote(ak.outPublic.public, q.attest, q.signature, { nonce, ekName: ek.name }).clockInfo;
  };
  await e.client.flushContext(ek.handle);
  const first = await quoteNow();
  // TPM Restart: Shutdown(STATE), power cycle, Startup(CLEAR) -> restartCount + 1.
  await e.client.shutdown('state'); await e.swtpm.control().init(); await e.client.startup('clear');
  const second = await quoteNow();
  assert.equal(second.resetCount, first.resetCount);
  assert.equal(second.restartCount, first.restartCount + 1);
  // TPM Reset: Shutdown(CLEAR), power cycle, Startup(CLEAR) -> resetCount + 1, restartCount 0.
  await e.client.shutdown('clear'); await e.swtpm.control().init(); await e.client.startup('clear');
  const third = await quoteNow();
  assert.equal(third.resetCount, first.resetCount + 1);
  assert.equal(third.restartCount, 0);
});

test('ReadClock, and errors name the offending handle or parameter', async (t) => {
  const e = need(t); if (!e) return;
  const t1 = await e.client.readClock();
  const t2 = await e.client.readClock();
  assert.ok(t2.clockInfo.clock >= t1.clockInfo.clock);
  await assert.rejects(e.client.readPublic(0x80fffff0), (err: unknown) => {
    assert.ok(err instanceof TpmResponseError);
    assert.equal(err.detail.format, 'format-one');
    assert.deepEqual(err.detail.subject, { kind: 'handle', number: 1 });
    assert.match(err.message, /TPM2_ReadPublic failed: TPM_RC_VALUE \(handle 1\)/);
    return true;
  });
  await assert.rejects(e.client.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: Buffer.alloc(31) }]), /must be 32 bytes/);
  // Wrong password on the owner hierarchy: a session error (session 1).
  await assert.rejects(e.client.evictControl(0x81000200, 0x81000200, passwordSession(Buffer.from('wrong'))), (err: unknown) => {
    assert.ok(err instanceof TpmResponseError);
    assert.equal(err.detail.subject?.kind === 'session' || err.detail.subject?.kind === 'handle', true, err.message);
    return true;
  });
});

test('PCR 16 and 23 can be reset from locality 0 and PCR 0 cannot: why only the BMC may talk to its TPM', async (t) => {
  const e = need(t); if (!e) return;
  const digest = hash(Alg.SHA256, Buffer.from('x'));
  for (const pcr of [16, 23]) {
    await e.client.pcrExtend(pcr, [{ hashAlg: Alg.SHA256, digest }]);
    await e.client.pcrReset(pcr);
    assert.deepEqual((await e.client.pcrRead(Alg.SHA256, [pcr])).get(pcr), Buffer.alloc(32));
  }
  await assert.rejects(e.client.pcrReset(0), (err: unknown) => err instanceof TpmResponseError && err.detail.name === 'TPM_RC_LOCALITY');
});

test('the control channel sets the locality commands come from (PCR 21 resets only from locality 2)', async (t) => {
  const e = need(t); if (!e) return;
  const control = e.swtpm.control();
  await assert.rejects(e.client.pcrReset(21), (err: unknown) => err instanceof TpmResponseError && err.detail.name === 'TPM_RC_LOCALITY');
  await control.setLocality(2);
  try {
    await e.client.pcrReset(21);
  } finally { await control.setLocality(0); }
  await assert.rejects(e.client.pcrReset(21), TpmResponseError);
});
