// Credential activation between a verifier (software MakeCredential) and two real TPMs:
// the secret comes back only from the TPM whose EK it was made for, and only for the AK
// whose name it was bound to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  Alg, TpmResponseError, activateCredential, createAk, createEk, kdfa, kdfe, loadAk, makeCredential, objectName,
  type KeyAlgorithm, type LoadedKey,
} from '../../src/tpm/index.js';
import { missingPrograms, startSwtpm, type SwtpmEnv } from './swtpm-fixture.js';

let tpmA: SwtpmEnv | undefined;
let tpmB: SwtpmEnv | undefined;
let skip: string | undefined;

before(async () => {
  skip = await missingPrograms(['swtpm']);
  if (skip) return;
  tpmA = await startSwtpm();
  tpmB = await startSwtpm();
});
after(async () => { await tpmA?.close(); await tpmB?.close(); });

test('KDFa and KDFe produce the requested lengths and depend on every input', () => {
  const k = kdfa(Alg.SHA256, Buffer.alloc(32, 1), 'STORAGE', Buffer.from('u'), Buffer.alloc(0), 128);
  assert.equal(k.length, 16);
  assert.equal(kdfa(Alg.SHA256, Buffer.alloc(32, 1), 'STORAGE', Buffer.from('u'), Buffer.alloc(0), 512).length, 64);
  assert.notDeepEqual(k, kdfa(Alg.SHA256, Buffer.alloc(32, 1), 'INTEGRITY', Buffer.from('u'), Buffer.alloc(0), 128));
  // KDFa's output for 256 bits is not a prefix-extension of the 128-bit one: the length is an input.
  assert.notDeepEqual(kdfa(Alg.SHA256, Buffer.alloc(32, 1), 'STORAGE', Buffer.from('u'), Buffer.alloc(0), 256).subarray(0, 16), k);
  const e = kdfe(Alg.SHA256, Buffer.alloc(32, 2), 'IDENTITY', Buffer.alloc(32, 3), Buffer.alloc(32, 4), 384);
  assert.equal(e.length, 48);
});

for (const alg of ['rsa', 'ecc'] as const satisfies readonly KeyAlgorithm[]) {
  test(`${alg.toUpperCase()} EK: activation succeeds for the right EK and AK, fails for another TPM's EK or another AK`, async (t) => {
    if (!tpmA || !tpmB) { t.skip(skip ?? 'swtpm did not start'); return; }
    const a = tpmA.client;
    const b = tpmB.client;
    const ekA = await createEk(a, alg);
    const ekB = await createEk(b, alg);
    let akA: LoadedKey | undefined;
    let akA2: LoadedKey | undefined;
    try {
      akA = await loadAk(a, ekA.handle, await createAk(a, ekA.handle, alg));
      akA2 = await loadAk(a, ekA.handle, await createAk(a, ekA.handle, alg));
      assert.deepEqual(objectName(akA.outPublic.public, akA.outPublic.bytes), akA.name);

      // Right EK, right AK: the secret comes back.
      const secret = randomBytes(32);
      const good = makeCredential(ekA.outPublic.public, akA.name, secret);
      assert.deepEqual(await activateCredential(a, akA.handle, ekA.handle, good.credentialBlob, good.secret), secret);

      // Made for TPM B's EK (as if the verifier were told B's EK): TPM A cannot open it.
      const forB = makeCredential(ekB.outPublic.public, akA.name, secret);
      await assert.rejects(activateCredential(a, akA.handle, ekA.handle, forB.credentialBlob, forB.secret), (err: unknown) => {
        assert.ok(err instanceof TpmResponseError, String(err));
        return true;
      });

      // Bound to another AK's name: the integrity check over the name fails.
      const forOtherAk = makeCredential(ekA.outPublic.public, akA2.name, secret);
      await assert.rejects(activateCredential(a, akA.handle, ekA.handle, forOtherAk.credentialBlob, forOtherAk.secret), (err: unknown) => {
        assert.ok(err instanceof TpmResponseError);
        assert.equal(err.detail.name, 'TPM_RC_INTEGRITY');
        return true;
      });

      // A flipped bit in the blob is caught by the HMAC.
      const flipped = Buffer.from(good.credentialBlob); flipped[flipped.length - 1] ^= 0x80;
      await assert.rejects(activateCredential(a, akA.handle, ekA.handle, flipped, good.secret), TpmResponseError);
    } finally {
      for (const k of [akA, akA2]) if (k) await a.flushContext(k.handle).catch(() => undefined);
      await a.flushContext(ekA.handle);
      await b.flushContext(ekB.handle);
    }
  });
}
