// The BMC API client against a tiny HTTP server on 127.0.0.1 that answers what a broken
// or hostile BMC might: every malformed body becomes a BmcApiError naming the property,
// never a TypeError from deep inside the client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BmcApiClient, BmcApiError, Paths } from '../../src/bmc/index.js';
import { ekTemplateEccP256, marshalPublic } from '../../src/tpm/index.js';

/** What the server answers next, per path: status and raw body text. */
const answers = new Map<string, { status: number; body: string }>();
/** The request targets (path and query) the server saw. */
const seen: string[] = [];
let server: http.Server;
let client: BmcApiClient;

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.url ?? '');
      const a = answers.get((req.url ?? '').split('?')[0] ?? '') ?? { status: 404, body: '' };
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new BmcApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
});
after(async () => { await new Promise((resolve) => server.close(resolve)); });

function answer(path: string, body: unknown, status = 200): void {
  answers.set(path, { status, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function rejectsWith(call: () => Promise<unknown>, status: number, property: string | undefined, message: RegExp): Promise<void> {
  await assert.rejects(call(), (e: unknown) => {
    assert.ok(e instanceof BmcApiError, `a BmcApiError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.equal(e.code, 'BMC_API');
    assert.equal(e.status, status);
    assert.equal(e.property, property);
    assert.match(e.message, message);
    return true;
  });
}

const entry = { seq: 1, time: '2026-01-01T00:00:00.000Z', anchor: 'aa'.repeat(32), pcr: 23, pcrValue: 'bb'.repeat(32), resetCount: 1, restartCount: 0 };
const publicArea = marshalPublic({ ...ekTemplateEccP256(), x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2) }).toString('base64');
const ak = { Algorithm: 'ecc', PublicArea: publicArea, KeyName: '000b' + 'cc'.repeat(32), PublicKeyPEM: '-----BEGIN PUBLIC KEY-----' };

test('well-formed bodies are returned as typed values', async () => {
  answer(Paths.anchors, entry, 201);
  assert.deepEqual(await client.anchor('aa'.repeat(32)), entry);
  answer(Paths.attestationKey, ak);
  const key = await client.attestationKey();
  assert.equal(key.public.type, 'ecc');
  assert.equal(key.name.length, 34);
  answer(Paths.ekCertificate, { CertificateString: null, Oem: { Vigil: { ...ak, Name: ak.KeyName } } });
  assert.equal((await client.endorsementKey()).certificatePem, null);
});

test('malformed anchor answers name the property', async () => {
  answer(Paths.anchors, {}, 201);
  await rejectsWith(() => client.anchor('aa'.repeat(32)), 201, '#', /POST \/redfish\/v1\/Oem\/Vigil\/Anchors: HTTP 201 but the body is not what a vigil BMC sends: # is not an anchor entry/);
  answer(Paths.anchors, 'null', 201);
  await rejectsWith(() => client.anchor('aa'.repeat(32)), 201, '#', /# is not an anchor entry/);
  answer(Paths.anchors, { ...entry, seq: '1' }, 201);
  await rejectsWith(() => client.anchor('aa'.repeat(32)), 201, '#', /not an anchor entry/);

  const page = { PCR: 23, Total: 2, NextFrom: null };
  answer(Paths.anchors, { ...page });
  await rejectsWith(() => client.anchors(), 200, '#/Members', /#\/Members is missing, expected an array/);
  answer(Paths.anchors, { ...page, PCR: '23', Members: [] });
  await rejectsWith(() => client.anchors(), 200, '#/PCR', /#\/PCR is a string, expected an integer/);
  answer(Paths.anchors, { ...page, Total: undefined, Members: [] });
  await rejectsWith(() => client.anchors(), 200, '#/Total', /#\/Total is missing, expected an integer/);
  answer(Paths.anchors, { ...page, Members: [entry, { seq: 2 }] });
  await rejectsWith(() => client.anchors(), 200, '#/Members/1', /#\/Members\/1 is not an anchor entry/);
  answer(Paths.anchors, [entry]);
  await rejectsWith(() => client.anchors(), 200, '#', /# is an array, expected a JSON object/);
});

test('malformed key answers name the property', async () => {
  answer(Paths.attestationKey, 'not json at all');
  await rejectsWith(() => client.attestationKey(), 200, '#', /# is a string, expected a JSON object/);
  answer(Paths.attestationKey, { ...ak, PublicArea: undefined });
  await rejectsWith(() => client.attestationKey(), 200, '#/PublicArea', /#\/PublicArea is missing, expected a string/);
  answer(Paths.attestationKey, { ...ak, PublicArea: '%%%%' });
  await rejectsWith(() => client.attestationKey(), 200, '#/PublicArea', /is not Base64/);
  answer(Paths.attestationKey, { ...ak, PublicArea: Buffer.from([0, 0x23, 0, 0x0b, 1]).toString('base64') });
  await rejectsWith(() => client.attestationKey(), 200, '#/PublicArea', /#\/PublicArea does not decode: /);
  answer(Paths.attestationKey, { ...ak, KeyName: 'xyz' });
  await rejectsWith(() => client.attestationKey(), 200, '#/KeyName', /is not hex digits/);
  answer(Paths.attestationKey, { ...ak, PublicKeyPEM: 42 });
  await rejectsWith(() => client.attestationKey(), 200, '#/PublicKeyPEM', /is a number, expected a string/);

  answer(Paths.ekCertificate, { CertificateString: null });
  await rejectsWith(() => client.endorsementKey(), 200, '#/Oem', /#\/Oem is missing, expected a JSON object/);
  answer(Paths.ekCertificate, { CertificateString: null, Oem: { Vigil: [] } });
  await rejectsWith(() => client.endorsementKey(), 200, '#/Oem/Vigil', /is an array/);
  answer(Paths.ekCertificate, { CertificateString: 7, Oem: { Vigil: { ...ak, Name: ak.KeyName } } });
  await rejectsWith(() => client.endorsementKey(), 200, '#/CertificateString', /is a number, expected a PEM string or null/);
  answer(Paths.ekCertificate, { CertificateString: null, Oem: { Vigil: ak } });
  await rejectsWith(() => client.endorsementKey(), 200, '#/Oem/Vigil/Name', /missing/);
});

test('malformed quote and activation answers name the property', async () => {
  answer(Paths.getSignedMeasurements, { SignedMeasurements: 12 });
  await rejectsWith(() => client.signedMeasurements(Buffer.alloc(16)), 200, '#/SignedMeasurements', /is a number, expected a string/);
  answer(Paths.getSignedMeasurements, { SignedMeasurements: Buffer.from([0, 0, 0, 0]).toString('base64') });
  await rejectsWith(() => client.signedMeasurements(Buffer.alloc(16)), 200, '#/SignedMeasurements', /does not decode: .*quoted is empty/);
  answer(Paths.getSignedMeasurements, { SignedMeasurements: Buffer.from([0, 8, 1, 2]).toString('base64') });
  await rejectsWith(() => client.signedMeasurements(Buffer.alloc(16)), 200, '#/SignedMeasurements', /does not decode/);
  answer(Paths.activateCredential, {});
  await rejectsWith(() => client.activateCredential(Buffer.alloc(4), Buffer.alloc(4)), 200, '#/CertInfo', /#\/CertInfo is missing/);
  answer(Paths.activateCredential, '');
  await rejectsWith(() => client.activateCredential(Buffer.alloc(4), Buffer.alloc(4)), 200, '#', /# is missing, expected a JSON object/);
});

test('HTTP errors carry the service message, or a short rendering of an odd error body', async () => {
  answer(Paths.anchors, { error: { code: 'Base.1.16.InternalError', message: 'the anchor list cannot be written' } }, 500);
  await rejectsWith(() => client.anchor('aa'.repeat(32)), 500, undefined, /HTTP 500: the anchor list cannot be written$/);
  answer(Paths.anchors, { error: 'no' }, 403);
  await rejectsWith(() => client.anchors(), 403, undefined, /HTTP 403: \{"error":"no"\}$/);
  answer(Paths.anchors, 'x'.repeat(1000), 502);
  await rejectsWith(() => client.anchors(), 502, undefined, /HTTP 502: x{200}…$/);
  answer(Paths.anchors, '', 503);
  await rejectsWith(() => client.anchors(), 503, undefined, /HTTP 503: \(empty body\)$/);
});

test('an unreachable service is a BmcApiError with status 0', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const c = new BmcApiClient(`http://127.0.0.1:${port}`, 'token');
  await rejectsWith(() => c.anchors(), 0, undefined, /no answer from http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
});

test('anchors() reads the list page by page, and refuses a page that skips or repeats a seq', async () => {
  const e = (seq: number) => ({ ...entry, seq });
  // The fake server answers the same body for every page: enough to see the client follow NextFrom and check seqs.
  answer(Paths.anchors, { PCR: 23, Total: 1, NextFrom: null, Members: [e(1)] });
  seen.length = 0;
  assert.deepEqual((await client.anchors()).Members.map((m) => m.seq), [1]);
  assert.deepEqual(seen, [`${Paths.anchors}?from=1`]);
  answer(Paths.anchors, { PCR: 23, Total: 3, NextFrom: 2, Members: [e(2)] });
  await rejectsWith(() => client.anchors(), 200, '#/Members/0/seq', /is 2, expected 1/);
  answer(Paths.anchors, { PCR: 23, Total: 3, NextFrom: 3, Members: [e(1)] });
  await rejectsWith(() => client.anchors(), 200, '#/NextFrom', /is 3, expected 2 after this page/);
  answer(Paths.anchors, { PCR: 23, Total: 3, NextFrom: 2, Members: [e(1)] });
  seen.length = 0;
  await rejectsWith(() => client.anchors(), 200, '#/Members/0/seq', /is 1, expected 2/);
  assert.deepEqual(seen, [`${Paths.anchors}?from=1`, `${Paths.anchors}?from=2`], 'the second page was asked from NextFrom');
});

test('an https URL without a CA or a pinned fingerprint is refused before any request', () => {
  assert.throws(() => new BmcApiClient('https://127.0.0.1:1', 'token'), (err: unknown) => err instanceof BmcApiError
    && /an https BMC needs the CA to check its certificate against \(ca\) or its certificate's SHA-256 fingerprint \(pinSha256/.test(err.message));
  assert.throws(() => new BmcApiClient('https://127.0.0.1:1', 'token', { pinSha256: 'abc' }), /pinSha256 must be a SHA-256 fingerprint/);
});
