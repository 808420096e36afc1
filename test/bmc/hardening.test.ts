// The holes a review of the BMC found (issue 10) and the two BMC points of issue 11, one
// test each, against the real service on a real swtpm: nobody else can reach its TPM or
// read its state; HTTPS with a pinned or CA-checked certificate; bounded slow clients;
// fresh nonces; banks and schemes the TPM lacks are the client's mistake (400); the
// anchor list is paged and the host rate-limited; the list must explain the PCR at
// start; a TPM the BMC does not own is never sent TPM2_Shutdown.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BmcApiClient, BmcApiError, BmcError, Paths, startBmcService, type BmcService, type BmcServiceOptions } from '../../src/bmc/index.js';
import { Alg, Property, haveProgram, marshalPcrSelections, marshalSignatureScheme, unmarshalAttest } from '../../src/tpm/index.js';
import { clientFor } from './bmc-fixture.js';
import { loadTlsIdentity } from '../../src/bmc/tls.js';
import { missingPrograms, startSwtpm } from '../tpm/swtpm-fixture.js';

const execFileP = promisify(execFile);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let skip: string | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => { skip = await missingPrograms(['swtpm', 'swtpm_setup', 'swtpm_localca', 'openssl']); });
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function service(options: Partial<BmcServiceOptions> = {}): Promise<{ s: BmcService; dir: string }> {
  const dir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'vigil-bmc-hard-'));
  if (!options.stateDir) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const s = await startBmcService({ stateDir: dir, host: '127.0.0.1', port: 0, ...options });
  cleanups.push(() => s.close());
  return { s, dir };
}

async function errorOf(r: Promise<{ status: number; body: unknown }>): Promise<{ status: number; message: string; field?: string }> {
  const { status, body } = await r;
  const err = (body as { error?: { message?: string; '@Message.ExtendedInfo'?: { RelatedProperties?: string[] }[] } }).error;
  return { status, message: err?.message ?? JSON.stringify(body), field: err?.['@Message.ExtendedInfo']?.[0]?.RelatedProperties?.[0] };
}

// ---- 1. nobody else reaches the TPM or reads its state ----

/** The listening sockets of a process: unix paths and TCP ports, from /proc. */
function listeners(pid: number): { unix: string[]; tcp: number[] } {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`)); if (m?.[1]) inodes.add(m[1]); } catch { /* closed meanwhile */ }
  }
  const unix: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = __SO_ACCEPTCON (listening)
    if (f[6] && inodes.has(f[6]) && f[3] === '00010000' && f[7]) unix.push(f[7]);
  }
  const tcp: number[] = [];
  for (const file of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${file}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[9] && inodes.has(f[9]) && f[3] === '0A') tcp.push(parseInt((f[1] ?? ':0').split(':')[1] ?? '0', 16));
    }
  }
  return { unix, tcp };
}

/** Runs node code as uid/gid 65534 (nobody) with no supplementary groups; resolves with its stdout. */
async function asNobody(code: string): Promise<string> {
  const { stdout } = await execFileP('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code], { timeout: 30_000 });
  return stdout.trim();
}

test('1. the BMC\'s swtpm listens only on unix sockets in its state directory, which another user can neither connect to nor read; its state is encrypted at rest', async (t) => {
  if (skip) { t.skip(skip); return; }
  if (process.getuid?.() !== 0 || !(await haveProgram('setpriv'))) { t.skip('needs root and setpriv to act as another user'); return; }
  const { s, dir } = await service();
  const pid = s.tpm.swtpmPid as number;
  const l = listeners(pid);
  assert.deepEqual(l.tcp, [], 'no TCP port: any local user could send CMD_GET_STATEBLOB or CMD_INIT to one');
  assert.equal(l.unix.length, 2, 'a data and a control socket');
  for (const p of l.unix) assert.ok(p.startsWith(dir + '/'), `${p} is inside the state directory`);
  // Another user tries every channel and every state file.
  const targets = JSON.stringify({ sockets: l.unix, files: [join(dir, 'tpm', 'tpm2-00.permall'), join(dir, 'swtpm.key'), join(dir, 'tokens', 'host.token'), join(dir, 'tls-key.pem'), join(dir, 'ak.json')] });
  const out = await asNobody(`
    const net = require('net'), fs = require('fs');
    const t = ${targets};
    const results = [];
    let pending = t.sockets.length;
    for (const f of t.files) { try { fs.readFileSync(f); results.push(f + ': READ'); } catch (e) { results.push(f + ': ' + e.code); } }
    for (const p of t.sockets) {
      const c = net.createConnection({ path: p });
      c.on('connect', () => { results.push(p + ': CONNECTED'); c.destroy(); if (--pending === 0) console.log(JSON.stringify(results)); });
      c.on('error', (e) => { results.push(p + ': ' + e.code); if (--pending === 0) console.log(JSON.stringify(results)); });
    }`);
  const results = JSON.parse(out) as string[];
  assert.equal(results.length, 7);
  for (const r of results) assert.match(r, /: EACCES$/, r);
  // Encrypted at rest: the EK certificate the TPM holds in NV does not appear in the state file.
  const permall = readFileSync(join(dir, 'tpm', 'tpm2-00.permall'));
  const cert = readFileSync(join(dir, 'ek-ecc-p256-cert.der'));
  assert.equal(permall.includes(cert.subarray(0, 64)), false, 'the NV contents are not stored in clear');
  // And the service still works through those sockets.
  assert.equal((await clientFor(s, s.tokens.host).anchor(sha('through the unix socket'))).seq, 1);
});

// ---- 3 and 11. banks the TPM lacks, unknown banks and schemes: 400 naming the field ----

test('3/11. a quote over a bank the TPM lacks, an unknown bank or another scheme than the AK\'s is refused with 400 naming the field', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { s } = await service();
  const v = clientFor(s, s.tokens.verifier);
  const nonce = randomBytes(16).toString('hex');
  const sel = (hashAlg: number) => marshalPcrSelections([{ hashAlg, pcrs: [23] }]).toString('base64');
  const cases: [Record<string, unknown>, RegExp, string][] = [
    [{ Nonce: nonce, PCRSelection: sel(Alg.SHA1) }, /selects the SHA1 bank, which this TPM does not have active \(it has: SHA256\)/, '#/PCRSelection'],
    [{ Nonce: nonce, PCRSelection: sel(0x0099) }, /hash algorithm 0x0099, which is not a PCR bank algorithm/, '#/PCRSelection'],
    [{ Nonce: nonce, Scheme: marshalSignatureScheme({ scheme: Alg.ECDSA, hashAlg: Alg.SHA384 }).toString('base64') }, /is not the attestation key's scheme/, '#/Scheme'],
    [{ Nonce: nonce, Scheme: marshalSignatureScheme({ scheme: Alg.RSASSA, hashAlg: Alg.SHA256 }).toString('base64') }, /is not the attestation key's scheme/, '#/Scheme'],
  ];
  for (const [body, message, field] of cases) {
    const e = await errorOf(v.request('POST', Paths.getSignedMeasurements, body));
    assert.equal(e.status, 400, `${JSON.stringify(body)}: ${e.message}`);
    assert.match(e.message, message);
    assert.equal(e.field, field);
  }
});

// ---- 4. TLS ----

test('4. the BMC serves HTTPS by default; clients pin its certificate or check it against a CA; plain HTTP only on loopback', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { s, dir } = await service();
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(readFileSync(join(dir, 'tls-cert.sha256'), 'utf8').trim(), s.tls?.fingerprintSha256);
  assert.equal(readFileSync(join(dir, 'tls-cert.pem'), 'utf8'), s.tls?.certPem);
  // Pinned, and against the certificate as a CA (its names include 127.0.0.1).
  assert.equal((await new BmcApiClient(s.url, s.tokens.verifier, { pinSha256: s.tls?.fingerprintSha256 }).anchorPage()).total, 0);
  assert.equal((await new BmcApiClient(s.url, s.tokens.verifier, { ca: s.tls?.certPem }).anchorPage()).total, 0);
  // Another BMC's certificate: refused before anything is sent.
  const other = await service();
  await assert.rejects(new BmcApiClient(s.url, s.tokens.verifier, { pinSha256: other.s.tls?.fingerprintSha256 }).anchorPage(),
    (e: unknown) => e instanceof BmcApiError && e.status === 0 && /not the pinned/.test(e.message));
  await assert.rejects(new BmcApiClient(s.url, s.tokens.verifier, { ca: other.s.tls?.certPem }).anchorPage(),
    (e: unknown) => e instanceof BmcApiError && e.status === 0 && /self.signed|unable to verify|certificate/i.test(e.message));
  // Plain HTTP to the HTTPS port gets no answer from the API.
  const plain = await new BmcApiClient(s.url.replace('https:', 'http:'), s.tokens.verifier).request('GET', Paths.anchors).catch((e: unknown) => e);
  assert.ok(plain instanceof BmcApiError || (plain as { status: number }).status >= 400, 'no API answer over plain HTTP');
  // The same certificate after a restart (pins survive).
  const pin = s.tls?.fingerprintSha256;
  await s.close();
  const again = await service({ stateDir: dir });
  assert.equal(again.s.tls?.fingerprintSha256, pin);
  // Plain HTTP: explicit, and on loopback only.
  const loop = await service({ plainHttp: true });
  assert.match(loop.s.url, /^http:\/\/127\.0\.0\.1:/);
  await assert.rejects(startBmcService({ stateDir: mkdtempSync(join(tmpdir(), 'vigil-bmc-plain-')), host: '10.200.9.2', port: 0, plainHttp: true }),
    (e: unknown) => e instanceof BmcError && e.code === 'BMC_CONFIG' && /--plain-http is allowed on a loopback address only/.test(e.message));
});

// ---- 5. slow clients ----

test('5. slow clients: at most maxConnections are held, and a client trickling its headers is cut off by the timeouts', async (t) => {
  if (skip) { t.skip(skip); return; }
  const maxConnections = 40;
  const { s } = await service({ plainHttp: true, limits: { maxConnections, headersTimeoutMs: 1500, requestTimeoutMs: 2500, checkIntervalMs: 200 } });
  const { port } = new URL(s.url);
  const total = 300;
  let closed = 0;
  let maxHeld = 0;
  const sockets: net.Socket[] = [];
  for (let i = 0; i < total; i++) {
    const c = net.createConnection({ host: '127.0.0.1', port: Number(port) });
    let timer: NodeJS.Timeout | undefined;
    c.on('connect', () => {
      c.write('GET /redfish/v1 HTTP/1.1\r\nHost: bmc\r\n');
      // The slow client: one header line every 300 ms, never the end of the headers.
      timer = setInterval(() => c.write(`X-Slow-${i}: x\r\n`), 300);
    });
    c.on('error', () => undefined);
    c.on('close', () => { clearInterval(timer); closed++; });
    sockets.push(c);
  }
  cleanups.push(() => { for (const c of sockets) c.destroy(); });
  const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      maxHeld = Math.max(maxHeld, await s.openConnections());
      if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms (closed ${closed} of ${total}, held ${await s.openConnections()})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // Those above the limit are closed at once; the rest when their headers time out.
  await until('the connections over the limit are dropped', () => closed >= total - maxConnections);
  await until('every trickling connection is closed by the server', () => closed === total);
  assert.ok(maxHeld <= maxConnections, `at most ${maxConnections} connections held, saw ${maxHeld}`);
  // The service still answers.
  assert.equal((await clientFor(s, undefined).request('GET', Paths.root)).status, 200);
});

// ---- 6 and 7. nonces ----

test('6/7. a quote needs the verifier\'s nonce of 16 to 66 bytes; no body, null, an empty or short nonce is refused', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { s } = await service();
  const v = clientFor(s, s.tokens.verifier);
  const cases: [unknown, RegExp, string][] = [
    [{}, /Nonce is required/, '#/Nonce'],
    ['null', /must be a JSON object/, '#'],
    [{ Nonce: '' }, /Nonce must be 16 to 66 bytes of fresh randomness from the verifier, got 0/, '#/Nonce'],
    [{ Nonce: 'ab'.repeat(15) }, /got 15/, '#/Nonce'],
    [{ Nonce: 'ab'.repeat(67) }, /Nonce must be at most 66 bytes/, '#/Nonce'],
  ];
  for (const [body, message, field] of cases) {
    const e = await errorOf(v.request('POST', Paths.getSignedMeasurements, body));
    assert.equal(e.status, 400, `${JSON.stringify(body)}: ${e.message}`);
    assert.match(e.message, message);
    assert.equal(e.field, field);
  }
  const noBody = await v.request('POST', Paths.getSignedMeasurements);
  assert.equal(noBody.status, 400);
  for (const size of [16, 65, 66]) {
    const nonce = randomBytes(size);
    const sm = await v.signedMeasurements(nonce);
    assert.deepEqual(unmarshalAttest(sm.attest).extraData, nonce, `a ${size}-byte nonce is the quote's extraData`);
  }
});

// ---- 8. paging and the host's rate limit ----

test('8. the anchor list is paged (from, limit, Total, NextFrom) and the host role is rate-limited', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { s } = await service({ limits: { anchorBurst: 5, anchorsPerSecond: 0.01, anchorPageDefault: 2, anchorPageMax: 3 } });
  const host = clientFor(s, s.tokens.host);
  const v = clientFor(s, s.tokens.verifier);
  for (let i = 1; i <= 5; i++) assert.equal((await host.anchor(sha(`page ${i}`))).seq, i);
  const limited = await host.request('POST', Paths.anchors, { Anchor: sha('one too many') });
  assert.equal(limited.status, 429);
  assert.match(JSON.stringify(limited.body), /more than 5 anchors at once or 0.01 per second; retry in \d+ ms/);
  const first = await v.anchorPage();
  assert.deepEqual([first.total, first.from, first.nextFrom, first.Members.map((m) => m.seq)], [5, 1, 3, [1, 2]]);
  const last = await v.anchorPage(4, 3);
  assert.deepEqual([last.nextFrom, last.Members.map((m) => m.seq)], [null, [4, 5]]);
  assert.deepEqual((await v.anchorPage(9)).Members, []);
  assert.deepEqual((await v.anchors()).Members.map((m) => m.anchor), [1, 2, 3, 4, 5].map((i) => sha(`page ${i}`)), 'read whole, page by page');
  for (const [q, message, field] of [['?limit=4', /limit must be 1..3, got 4/, 'limit'], ['?from=0', /from must be 1../, 'from'], ['?from=x', /from must be an integer/, 'from'], ['?seq=1', /unknown query parameter seq/, 'seq']] as const) {
    const e = await errorOf(v.request('GET', Paths.anchors + q));
    assert.equal(e.status, 400, q);
    assert.match(e.message, message);
    assert.equal(e.field, field);
  }
});

// ---- issue 11: the list explains the PCR at start; a TPM not ours gets no Shutdown ----

test('at start, an anchor list that does not replay to the PCR (nothing pending) refuses anchors and quotes, saying why', async (t) => {
  if (skip) { t.skip(skip); return; }
  const env = await startSwtpm({ provision: true });
  cleanups.push(() => env.close());
  await env.client.close();
  const source = { kind: 'swtpm-unix' as const, path: env.swtpm.sockets?.data ?? '' };
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bmc-replay-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const first = await startBmcService({ stateDir: dir, host: '127.0.0.1', port: 0, source });
  await clientFor(first, first.tokens.host).anchor(sha('one'));
  await clientFor(first, first.tokens.host).anchor(sha('two'));
  await first.close();
  // Someone else extends the anchor PCR while the BMC is down; nothing is pending.
  await env.client.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: Buffer.from(sha('forged'), 'hex') }]);
  await env.client.close();
  const { s } = await service({ stateDir: dir, source });
  assert.match(s.unsettled ?? '', /the anchor list .* does not replay to PCR 23: the PCR holds [0-9a-f]{64}, but the list's last anchor of this TPM epoch \(reset \d+\) is 2/);
  const v = clientFor(s, s.tokens.verifier);
  assert.equal((await v.anchors()).Members.length, 2, 'the list is still served');
  const refused = (e: unknown) => e instanceof BmcApiError && e.status === 500 && /does not replay to PCR 23/.test(e.message);
  await assert.rejects(v.signedMeasurements(randomBytes(32)), refused);
  await assert.rejects(clientFor(s, s.tokens.host).anchor(sha('three')), refused);
});

test('close() sends no TPM2_Shutdown to a TPM the BMC does not own', async (t) => {
  if (skip) { t.skip(skip); return; }
  const env = await startSwtpm({ provision: true });
  cleanups.push(() => env.close());
  await env.client.close();
  const { s } = await service({ source: { kind: 'swtpm-unix', path: env.swtpm.sockets?.data ?? '' } });
  await clientFor(s, s.tokens.host).anchor(sha('external'));
  await s.close();
  // Power-cycle the external TPM and ask it whether the last power-down was announced:
  // TPMA_STARTUP_CLEAR.orderly (bit 31) is set only after a TPM2_Shutdown.
  await env.swtpm.control().init();
  await env.client.startup('clear');
  const startupClear = (await env.client.getProperty(Property.STARTUP_CLEAR)) ?? 0;
  assert.equal((startupClear >>> 31) & 1, 0, 'no TPM2_Shutdown reached the external TPM');
  // Whereas the swtpm the BMC owns is shut down in order (its own next start is a clean TPM reset).
  const ownDir = mkdtempSync(join(tmpdir(), 'vigil-bmc-own-'));
  cleanups.push(() => rmSync(ownDir, { recursive: true, force: true }));
  const own = await startBmcService({ stateDir: ownDir, host: '127.0.0.1', port: 0 });
  const swtpmPid = own.tpm.swtpmPid as number;
  await own.close();
  assert.equal(existsSync(`/proc/${swtpmPid}`), false, 'the BMC\'s own swtpm is stopped with it');
});

test('4. a server with another certificate never sees the token: the pin is checked before the request is written', async (t) => {
  if (skip) { t.skip(skip); return; }
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bmc-impostor-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const impostor = await loadTlsIdentity(dir, '127.0.0.1');
  let received = Buffer.alloc(0);
  const server = tls.createServer({ key: impostor.key, cert: impostor.cert }, (sock) => {
    sock.on('data', (d: Buffer) => { received = Buffer.concat([received, d]); });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const { s } = await service();
  await assert.rejects(new BmcApiClient(url, 'secret-token-value', { pinSha256: s.tls?.fingerprintSha256 }).request('GET', Paths.anchors),
    (e: unknown) => e instanceof BmcApiError && /not the pinned/.test(e.message));
  await assert.rejects(new BmcApiClient(url, 'secret-token-value', { ca: s.tls?.certPem, timeoutMs: 10_000 }).request('GET', Paths.anchors), BmcApiError);
  assert.equal(received.length, 0, 'not a byte of the request reached the impostor');
  // Sanity: with the impostor's own pin the request (and its token) does go out.
  void new BmcApiClient(url, 'secret-token-value', { pinSha256: impostor.fingerprintSha256, timeoutMs: 2_000 }).request('GET', Paths.anchors).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  while (!received.includes('secret-token-value')) {
    if (Date.now() > deadline) assert.fail('the correctly pinned request never arrived');
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('5. silent TLS clients (no handshake) are closed by the handshake timeout', async (t) => {
  if (skip) { t.skip(skip); return; }
  const { s } = await service({ limits: { handshakeTimeoutMs: 1000, maxConnections: 20 } });
  const { port } = new URL(s.url);
  let closed = 0;
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 60; i++) {
    const c = net.createConnection({ host: '127.0.0.1', port: Number(port) });
    c.on('error', () => undefined);
    c.on('close', () => { closed++; });
    sockets.push(c);
  }
  cleanups.push(() => { for (const c of sockets) c.destroy(); });
  const deadline = Date.now() + 60_000;
  while (closed < 60) {
    assert.ok(await s.openConnections() <= 20, 'the connection limit holds for TLS too');
    if (Date.now() > deadline) assert.fail(`only ${closed} of 60 silent connections were closed`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await clientFor(s, undefined).request('GET', Paths.root)).status, 200);
});
