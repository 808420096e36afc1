// The BMC API client against a tiny HTTP server on 127.0.0.1 that answers what a broken
// or hostile BMC might: every malformed body becomes a BmcApiError naming the property,
// never a TypeError from deep inside the client. Then its kept-alive HTTPS connection
// against the real BMC service (below).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcApiClient, BmcApiError, Paths, startBmcService, type BmcService } from '../../src/bmc/index.js';
import { ekTemplateEccP256, haveProgram, marshalPublic } from '../../src/tpm/index.js';
import { until } from '../helpers/wait.js';

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

// ---- Keep-alive against the real BMC service (HTTPS on 127.0.0.1, swtpm) ----
// The client reaches the BMC through a TCP relay that counts the connections it accepts:
// what the BMC's side sees, whatever the client believes. In `blackhole` mode the relay
// keeps the client's side of a connection open when the BMC's side closes, and resets it
// at the client's next write: a BMC that went away without its FIN reaching the host (a
// power cut, a restart behind a NAT), the stale socket a kept-alive client must survive.

interface Relay { port: number; accepted: number; blackhole: boolean; close(): Promise<void> }
async function relay(target: () => number): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const r: Relay = { port: 0, accepted: 0, blackhole: false, close: async () => undefined };
  const server = net.createServer((c) => {
    r.accepted++;
    const up = net.connect(target(), '127.0.0.1');
    sockets.add(c); sockets.add(up);
    let upGone = false;
    c.on('data', (d) => { if (upGone) c.resetAndDestroy(); else up.write(d); });
    up.on('data', (d) => c.write(d));
    const upClosed = () => { upGone = true; if (!r.blackhole) c.end(); };
    up.on('end', upClosed);
    up.on('close', upClosed);
    up.on('error', () => undefined);
    c.on('end', () => up.end());
    c.on('close', () => up.destroy());
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.close = () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); });
  return r;
}

let bmcSkip: string | undefined;
let bmcWork = '';
let bmc: BmcService | undefined;
let bmcPort = 0;
const bmcOptions = () => ({ stateDir: join(bmcWork, 'bmc'), host: '127.0.0.1', port: bmcPort, limits: { keepAliveTimeoutMs: 3000 } });

before(async () => {
  for (const p of ['swtpm', 'swtpm_setup', 'swtpm_localca', 'openssl']) if (!(await haveProgram(p))) bmcSkip = `not installed: ${p}`;
  if (bmcSkip) { process.stdout.write(`# keep-alive tests against the BMC skipped: ${bmcSkip}\n`); return; }
  bmcWork = mkdtempSync(join(tmpdir(), 'vigil-keepalive-'));
  bmc = await startBmcService(bmcOptions());
  bmcPort = Number(new URL(bmc.url).port);
});
after(async () => {
  await bmc?.close();
  if (bmcWork) rmSync(bmcWork, { recursive: true, force: true });
});

const hex = (i: number, tag: string) => createHash('sha256').update(`${tag} ${i}`).digest('hex');
function hostClient(port: number): BmcApiClient {
  return new BmcApiClient(`https://127.0.0.1:${port}`, bmc?.tokens.host, { pinSha256: bmc?.tls?.fingerprintSha256 });
}
async function anchorList(): Promise<string[]> {
  const c = new BmcApiClient(bmc?.url ?? '', bmc?.tokens.verifier, { pinSha256: bmc?.tls?.fingerprintSha256 });
  try { return (await c.anchors()).Members.map((m) => m.anchor); } finally { c.close(); }
}

test('anchors over HTTPS reuse one kept-alive TLS connection', async (t) => {
  if (bmcSkip || !bmc) { t.skip(bmcSkip ?? 'no BMC'); return; }
  const r = await relay(() => bmcPort);
  const client = hostClient(r.port);
  try {
    const before = (await anchorList()).length;
    for (let i = 0; i < 20; i++) await client.anchor(hex(i, 'keepalive'));
    assert.equal(r.accepted, 1, 'the BMC saw one connection for 20 anchors');
    assert.deepEqual(client.stats, { connections: 1, staleRetries: 0 });
    assert.equal(await bmc.openConnections(), 1, 'and it is still open, idle, for the next anchor');
    const list = await anchorList();
    assert.deepEqual(list.slice(before), Array.from({ length: 20 }, (_, i) => hex(i, 'keepalive')));
  } finally { client.close(); await r.close(); }
});

test('the idle connection the BMC closes (its keep-alive timeout) is not reused: the next anchor opens a fresh one', async (t) => {
  if (bmcSkip || !bmc) { t.skip(bmcSkip ?? 'no BMC'); return; }
  const r = await relay(() => bmcPort);
  const client = hostClient(r.port);
  try {
    await client.anchor(hex(0, 'idle'));
    // The BMC closes an idle connection after its keep-alive timeout (3 s here).
    await until('the BMC to close the idle connection', async () => (await bmc?.openConnections()) === 0, 30_000, 100);
    await client.anchor(hex(1, 'idle'));
    assert.equal(r.accepted, 2);
    assert.equal(client.stats.connections, 2);
    const list = await anchorList();
    assert.deepEqual(list.slice(-2), [hex(0, 'idle'), hex(1, 'idle')]);
  } finally { client.close(); await r.close(); }
});

test('a BMC restart under a kept-alive connection: one retry on a fresh connection, no anchor lost or duplicated, all in order', async (t) => {
  if (bmcSkip || !bmc) { t.skip(bmcSkip ?? 'no BMC'); return; }
  const r = await relay(() => bmcPort);
  const client = hostClient(r.port);
  try {
    for (let i = 0; i < 5; i++) await client.anchor(hex(i, 'restart'));
    assert.equal(r.accepted, 1);
    // The BMC restarts; the host never hears its connection close (blackhole), so the
    // client's kept-alive socket looks alive until it writes on it.
    r.blackhole = true;
    await bmc.close();
    bmc = await startBmcService(bmcOptions());
    for (let i = 5; i < 10; i++) await client.anchor(hex(i, 'restart'));
    assert.deepEqual(client.stats, { connections: 2, staleRetries: 1 }, 'the stale socket failed once, the retry went on a fresh connection');
    assert.equal(r.accepted, 2);
    const list = await anchorList();
    const ours = list.filter((a) => Array.from({ length: 10 }, (_, i) => hex(i, 'restart')).includes(a));
    assert.deepEqual(ours, Array.from({ length: 10 }, (_, i) => hex(i, 'restart')), 'each anchor once, in order');

    // And with the close seen (no blackhole): the pool drops the closed socket, no retry needed.
    r.blackhole = false;
    await bmc.close();
    bmc = await startBmcService(bmcOptions());
    await client.anchor(hex(10, 'restart'));
    assert.equal(client.stats.connections, 3);
    assert.equal((await anchorList()).slice(-1)[0], hex(10, 'restart'));
  } finally { client.close(); await r.close(); }
});

test('with the BMC down, the retry fails too and the error says so (the anchorer then queues)', async (t) => {
  if (bmcSkip || !bmc) { t.skip(bmcSkip ?? 'no BMC'); return; }
  const r = await relay(() => bmcPort);
  const client = hostClient(r.port);
  try {
    await client.anchor(hex(0, 'down'));
    r.blackhole = true;
    await bmc.close();
    bmc = undefined;
    await rejectsWith(() => client.anchor(hex(1, 'down')), 0, undefined, /POST \/redfish\/v1\/Oem\/Vigil\/Anchors: no answer from https:\/\/127\.0\.0\.1:\d+: /);
    assert.equal(client.stats.staleRetries, 1);
  } finally {
    client.close();
    await r.close();
    bmc ??= await startBmcService(bmcOptions());
  }
  assert.ok(!(await anchorList()).includes(hex(1, 'down')), 'the refused anchor is not in the list');
});
