// Response-code decoding, from the bit layout of TPM 2.0 Part 2, 6.6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResponseCode, TpmResponseError } from '../../src/tpm/index.js';

test('format-one codes name the handle, session or parameter', () => {
  assert.deepEqual(decodeResponseCode(0x184).subject, { kind: 'handle', number: 1 });
  assert.equal(decodeResponseCode(0x184).name, 'TPM_RC_VALUE');
  const session = decodeResponseCode(0x98e); // AUTH_FAIL, session 1
  assert.equal(session.name, 'TPM_RC_AUTH_FAIL');
  assert.deepEqual(session.subject, { kind: 'session', number: 1 });
  const param = decodeResponseCode(0x2c4); // VALUE, parameter 2
  assert.deepEqual(param.subject, { kind: 'parameter', number: 2 });
  assert.equal(param.format, 'format-one');
  assert.equal(decodeResponseCode(0x09a).subject, undefined); // INSUFFICIENT, no subject
});

test('format-zero errors and warnings, vendor and TPM 1.2 codes', () => {
  assert.equal(decodeResponseCode(0x100).name, 'TPM_RC_INITIALIZE');
  assert.equal(decodeResponseCode(0x14c).name, 'TPM_RC_NV_DEFINED');
  const retry = decodeResponseCode(0x922);
  assert.equal(retry.name, 'TPM_RC_RETRY');
  assert.equal(retry.warning, true);
  assert.equal(decodeResponseCode(0x911).name, 'TPM_RC_REFERENCE_H1');
  assert.equal(decodeResponseCode(0x500).format, 'vendor');
  assert.equal(decodeResponseCode(0x01e).format, 'tpm1.2');
  assert.equal(decodeResponseCode(0).format, 'success');
});

test('TpmResponseError carries the code, the command and a readable message', () => {
  const e = new TpmResponseError('Quote', 0x98e);
  assert.equal(e.code, 'TPM_RESPONSE');
  assert.equal(e.rc, 0x98e);
  assert.match(e.message, /^TPM2_Quote failed: TPM_RC_AUTH_FAIL \(session 1\)/);
});
