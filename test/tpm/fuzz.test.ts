// The unmarshaller on hostile bytes. Real responses are recorded from swtpm, then
// truncated, bit-flipped and replaced by noise: every parse must either succeed or throw
// a TpmFormatError / TpmResponseError — never another exception, never hang.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  Alg, Responses, TpmError, TpmFormatError, TpmTransportError, SwtpmTcpTransport, createAk, createEk, decodeResponse, loadAk,
  makeCredential, activateCredential, unmarshalAttest, unmarshalPublic, unmarshalSignature,
  type ResponseShape, type TpmExchange,
} from '../../src/tpm/index.js';
import { missingPrograms, startSwtpm, type SwtpmEnv } from './swtpm-fixture.js';

let env: SwtpmEnv | undefined;
let skip: string | undefined;
const recorded: TpmExchange[] = [];
/** swtpm sometimes answers TPM_RC_RETRY (the client resends); those are left out of the corpus. */
const isRetry = (x: TpmExchange) => x.response.length >= 10 && x.response.readUInt32BE(6) === 0x922;

before(async () => {
  skip = await missingPrograms(['swtpm']);
  if (skip) return;
  env = await startSwtpm({ clientOptions: { onExchange: (x) => { if (!isRetry(x)) recorded.push(x); } } });
  // One of each command, so the corpus covers every response shape.
  const c = env.client;
  await c.getProperty(0x105);
  await c.getRandom(16);
  await c.pcrRead(Alg.SHA256, [0, 1, 23]);
  await c.pcrExtend(23, [{ hashAlg: Alg.SHA256, digest: Buffer.alloc(32, 7) }]);
  for (const alg of ['rsa', 'ecc'] as const) {
    const ek = await createEk(c, alg);
    const ak = await loadAk(c, ek.handle, await createAk(c, ek.handle, alg));
    await c.readPublic(ak.handle);
    await c.quote(ak.handle, Buffer.from('fuzz nonce'), [{ hashAlg: Alg.SHA256, pcrs: [0, 23] }]);
    const mc = makeCredential(ek.outPublic.public, ak.name, Buffer.from('secret'));
    await activateCredential(c, ak.handle, ek.handle, mc.credentialBlob, mc.secret);
    await c.flushContext(ak.handle); await c.flushContext(ek.handle);
  }
  await c.nvDefineSpace({ nvIndex: 0x01500020, nameAlg: Alg.SHA256, attributes: (0x40 | 0x4 | 0x40000 | 0x2000000) >>> 0, authPolicy: Buffer.alloc(0), dataSize: 32 });
  await c.nvExtend(0x01500020, Buffer.from('x'));
  await c.nvRead(0x01500020);
  await c.nvReadPublic(0x01500020);
  await c.nvUndefineSpace(0x01500020);
  await c.readClock();
  await c.readPublic(0x80fffff0).catch(() => undefined);
});
after(async () => { await env?.close(); });

/** Deterministic PRNG (xorshift32) so a failure can be reproduced. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000; };
}

function withSize(buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  if (b.length >= 6) b.writeUInt32BE(b.length, 2);
  return b;
}

let outcomes = { ok: 0, format: 0, response: 0 };
function parseMustBeTyped(x: TpmExchange, bytes: Buffer): void {
  const shape = (Responses as Record<string, ResponseShape<unknown>>)[x.command];
  assert.ok(shape, `no response shape for ${x.command}`);
  try {
    decodeResponse(x.command, bytes, shape, x.sessionCount);
    outcomes.ok++;
  } catch (e) {
    if (!(e instanceof TpmError) || (e.code !== 'TPM_FORMAT' && e.code !== 'TPM_RESPONSE')) {
      assert.fail(`TPM2_${x.command} parse of ${bytes.toString('hex')} threw ${String(e)}`);
    }
    if (e.code === 'TPM_FORMAT') outcomes.format++; else outcomes.response++;
  }
}

test('every recorded response parses as it came from the TPM', (t) => {
  if (!env) { t.skip(skip ?? 'swtpm did not start'); return; }
  const commands = new Set(recorded.map((x) => x.command));
  for (const c of ['GetCapability', 'GetRandom', 'PCR_Read', 'PCR_Extend', 'CreatePrimary', 'Create', 'Load', 'ReadPublic', 'Quote', 'StartAuthSession', 'PolicySecret', 'ActivateCredential', 'FlushContext', 'NV_DefineSpace', 'NV_Extend', 'NV_Read', 'NV_ReadPublic', 'NV_UndefineSpace', 'ReadClock']) {
    assert.ok(commands.has(c as TpmExchange['command']), `corpus has ${c}`);
  }
  outcomes = { ok: 0, format: 0, response: 0 };
  for (const x of recorded) parseMustBeTyped(x, x.response);
  assert.equal(outcomes.response, 1, 'only the deliberate ReadPublic of a missing handle fails');
});

test('truncated responses (with and without a consistent size field) give typed errors', (t) => {
  if (!env) { t.skip(skip ?? 'swtpm did not start'); return; }
  outcomes = { ok: 0, format: 0, response: 0 };
  for (const x of recorded) {
    for (let n = 0; n < x.response.length; n++) {
      const cut = x.response.subarray(0, n);
      parseMustBeTyped(x, cut);
      parseMustBeTyped(x, withSize(cut));
    }
  }
  assert.ok(outcomes.format > 0);
});

test('bit-flipped responses, wrong tags and wrong sizes give typed errors', (t) => {
  if (!env) { t.skip(skip ?? 'swtpm did not start'); return; }
  const rand = rng(0x5eed);
  outcomes = { ok: 0, format: 0, response: 0 };
  for (const x of recorded) {
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(x.response);
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) {
        const bit = Math.floor(rand() * b.length * 8);
        b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
      }
      parseMustBeTyped(x, b);
      parseMustBeTyped(x, withSize(b));
    }
    for (const tag of [0x0000, 0x00c4, 0x8001, 0x8002, 0xffff]) {
      const b = Buffer.from(x.response); b.writeUInt16BE(tag, 0); parseMustBeTyped(x, b);
    }
    for (const size of [0, 9, 10, x.response.length - 1, x.response.length + 1, 0xffffffff]) {
      const b = Buffer.from(x.response); b.writeUInt32BE(size >>> 0, 2); parseMustBeTyped(x, b);
    }
    // Extra bytes after a valid response.
    parseMustBeTyped(x, withSize(Buffer.concat([x.response, Buffer.from([0])])));
  }
  assert.ok(outcomes.format > 0 && outcomes.ok > 0, JSON.stringify(outcomes));
});

test('random noise with a plausible header gives typed errors', (t) => {
  if (!env) { t.skip(skip ?? 'swtpm did not start'); return; }
  const rand = rng(42);
  const shapes = [...new Map(recorded.map((x) => [x.command, x])).values()];
  for (let i = 0; i < 5000; i++) {
    const x = shapes[i % shapes.length] as TpmExchange;
    const len = Math.floor(rand() * 300);
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = Math.floor(rand() * 256);
    if (len >= 10 && rand() < 0.8) { b.writeUInt16BE(x.sessionCount ? 0x8002 : 0x8001, 0); b.writeUInt32BE(len, 2); b.writeUInt32BE(0, 6); }
    parseMustBeTyped(x, b);
  }
});

test('structure parsers (TPMS_ATTEST, TPMT_PUBLIC, TPMT_SIGNATURE) only throw TpmFormatError', (t) => {
  if (!env) { t.skip(skip ?? 'swtpm did not start'); return; }
  const rand = rng(7);
  const succeeded = (x: TpmExchange) => x.response.readUInt32BE(6) === 0;
  const quotes = recorded.filter((x) => x.command === 'Quote' && succeeded(x)).map((x) => decodeResponse('Quote', x.response, Responses.Quote, x.sessionCount));
  const publics = recorded.filter((x) => x.command === 'ReadPublic' && succeeded(x)).map((x) => decodeResponse('ReadPublic', x.response, Responses.ReadPublic, 0).outPublic.bytes);
  const cases: [Buffer, (b: Buffer) => unknown][] = [
    ...quotes.map((q) => [q.attest, unmarshalAttest] as [Buffer, (b: Buffer) => unknown]),
    ...quotes.map((q) => [q.signatureBytes, unmarshalSignature] as [Buffer, (b: Buffer) => unknown]),
    ...publics.map((p) => [p, unmarshalPublic] as [Buffer, (b: Buffer) => unknown]),
  ];
  assert.ok(cases.length >= 6);
  for (const [good, parse] of cases) {
    parse(good);
    for (let n = 0; n < good.length; n++) assert.throws(() => parse(good.subarray(0, n)), TpmFormatError);
    for (let i = 0; i < 1000; i++) {
      const b = Buffer.from(good);
      const bit = Math.floor(rand() * b.length * 8);
      b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
      try { parse(b); } catch (e) { assert.ok(e instanceof TpmFormatError, String(e)); }
    }
  }
});

/** A TCP peer that answers every command with `reply` (then optionally hangs up). */
async function misbehavingPeer(reply: Buffer, hangUp: boolean): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => { if (reply.length) s.write(reply); if (hangUp) s.end(); });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }) };
}

test('the TCP transport turns bad framing, early close and silence into typed errors', async () => {
  const command = Buffer.from('80010000000c0000017b0008', 'hex'); // GetRandom(8)
  const header = (size: number) => { const b = Buffer.alloc(10); b.writeUInt16BE(0x8001); b.writeUInt32BE(size, 2); return b; };
  const cases: { reply: Buffer; hangUp: boolean; type: new (...args: never[]) => TpmError }[] = [
    { reply: header(4), hangUp: false, type: TpmFormatError },                 // size smaller than a header
    { reply: header(0x7fffffff), hangUp: false, type: TpmFormatError },        // absurd size
    { reply: header(40), hangUp: true, type: TpmTransportError },              // closes mid-response
    { reply: Buffer.concat([header(10), Buffer.alloc(4)]), hangUp: false, type: TpmFormatError }, // bytes beyond the size
    { reply: Buffer.alloc(0), hangUp: false, type: TpmTransportError },        // never answers
  ];
  for (const c of cases) {
    const peer = await misbehavingPeer(c.reply, c.hangUp);
    const transport = new SwtpmTcpTransport({ port: peer.port, timeoutMs: 300 });
    try {
      await assert.rejects(transport.send(command), c.type);
    } finally { await transport.close(); await peer.close(); }
  }
  await assert.rejects(new SwtpmTcpTransport({ port: 1, timeoutMs: 300 }).send(command), TpmTransportError);
});
