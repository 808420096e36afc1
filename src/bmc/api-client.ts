// A client of the BMC API for the host (anchors) and the verifier (quotes, keys,
// credential activation). Every failure is a BmcApiError: HTTP errors with the service's
// message, an unreachable service, and answers whose body is not what the API defines.
// Bodies come from the network, so each value read is checked before it is used; a
// wrong one names the property, rather than surfacing later as a TypeError.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  marshalPcrSelections, marshalSignatureScheme, unmarshalPublic,
  type PcrSelection, type SignatureScheme, type TpmPublic,
} from '../tpm/index.js';
import { isAnchorEntry, type AnchorEntry } from './anchors.js';
import { Paths, parseSignedMeasurements, type SignedMeasurements } from './redfish.js';

export class BmcApiError extends Error {
  readonly code = 'BMC_API';
  /**
   * `status` is the HTTP status, 0 when no answer came. `property` is the JSON pointer
   * of the value that was missing or malformed in a response body, e.g. "#/PublicArea".
   */
  constructor(readonly status: number, message: string, readonly body: unknown, readonly property?: string) { super(message); this.name = 'BmcApiError'; }
}

/** A request on a kept-alive socket failed before any answer: the socket was stale. */
class StaleSocketError extends Error {
  constructor(override readonly cause: Error) { super(cause.message); }
}

export interface KeyInfo { algorithm: string; public: TpmPublic; publicBytes: Buffer; name: Buffer; pem: string }

type Json = Record<string, unknown>;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Reads values out of one successful response, throwing a BmcApiError that names the property. */
class ResponseBody {
  constructor(private readonly what: string, private readonly status: number, readonly raw: unknown) {}

  fail(pointer: string, problem: string, cause?: unknown): never {
    const err = new BmcApiError(this.status, `${this.what}: HTTP ${this.status} but the body is not what a vigil BMC sends: ${pointer} ${problem}`, this.raw, pointer);
    if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause });
    throw err;
  }

  object(v: unknown, pointer: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(pointer, `is ${describe(v)}, expected a JSON object`);
    return v as Json;
  }
  root(): Json { return this.object(this.raw, '#'); }

  string(o: Json, key: string, at: string): string {
    const v = o[key];
    if (typeof v !== 'string') this.fail(`${at}/${key}`, `is ${describe(v)}, expected a string`);
    return v;
  }
  base64(o: Json, key: string, at: string): Buffer {
    const s = this.string(o, key, at);
    // Buffer.from(s, 'base64') never throws: it skips what it does not understand.
    if (s.length === 0 || !BASE64.test(s)) this.fail(`${at}/${key}`, 'is not Base64 with padding');
    return Buffer.from(s, 'base64');
  }
  hex(o: Json, key: string, at: string): Buffer {
    const s = this.string(o, key, at);
    if (s.length === 0 || !HEX.test(s)) this.fail(`${at}/${key}`, 'is not hex digits');
    return Buffer.from(s, 'hex');
  }
  integer(o: Json, key: string, at: string): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(`${at}/${key}`, `is ${describe(v)}, expected an integer`);
    return v;
  }
  decode<T>(pointer: string, bytes: Buffer, parse: (b: Buffer) => T): T {
    try { return parse(bytes); } catch (e) { return this.fail(pointer, `does not decode: ${(e as Error).message}`, e); }
  }
  anchorEntry(v: unknown, pointer: string): AnchorEntry {
    if (!isAnchorEntry(v)) this.fail(pointer, 'is not an anchor entry (seq, time, anchor, pcr, pcrValue, resetCount, restartCount)');
    return v;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** The message of a Redfish error body, or a short rendering of whatever came instead. */
function errorMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const error = (body as Json).error;
    if (typeof error === 'object' && error !== null) {
      const message = (error as Json).message;
      if (typeof message === 'string') return message;
    }
  }
  const text = typeof body === 'string' ? body : body === undefined ? '(empty body)' : JSON.stringify(body);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

export interface BmcApiClientOptions {
  /** PEM CA certificate(s) the server's certificate must chain to (and name the URL's host). */
  ca?: string;
  /**
   * SHA-256 fingerprint (hex; colons and case ignored) of the server's certificate, as
   * the BMC writes it to its state directory's tls-cert.sha256. The certificate must be
   * exactly that one; no CA or name is checked then.
   */
  pinSha256?: string;
  /** How long one request may take in all (default 30 s). */
  timeoutMs?: number;
}

/** The most response bytes read: a page of anchors is far smaller; anything bigger is not a vigil BMC. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface AnchorPage { PCR: number; total: number; from: number; nextFrom: number | null; Members: AnchorEntry[] }

/** Errors of a request written on a kept-alive socket the server had already closed (its idle timeout, or a restart). */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * The client's connection pool: one kept-alive connection (a vigil BMC serialises its TPM
 * work, and the agent anchors one checkpoint at a time), reused from request to request
 * instead of a TCP and TLS handshake each. HTTPS connections are made by `connect`, which
 * checks the server's certificate before the agent hands the socket to a request, so no
 * request (no token) is ever written to an unchecked server. Free sockets are unref'd (an
 * idle connection keeps no process alive) and dropped before the server's announced
 * Keep-Alive timeout (Node's agent reads the hint).
 */
class BmcAgent extends http.Agent {
  constructor(private readonly connect: (() => Promise<Socket>) | undefined, private readonly onConnect: () => void) {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, scheduling: 'lifo' });
  }

  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    this.onConnect();
    if (!this.connect) return net.createConnection({ host: options.host ?? undefined, port: Number(options.port) });
    this.connect().then((s) => callback?.(null, s), (e: Error) => callback?.(e, undefined as unknown as Duplex));
    return undefined;
  }

  /** Drops the idle connections: the next request opens a fresh one. */
  dropIdle(): void {
    for (const list of Object.values(this.freeSockets)) for (const s of list ?? []) s.destroy();
  }
}

export class BmcApiClient {
  private readonly url: URL;
  private readonly pin: string | undefined;
  private readonly options: BmcApiClientOptions;
  private readonly pool: BmcAgent;
  /** Connections this client opened, and requests it sent again on a fresh one after a stale kept-alive socket failed. */
  readonly stats = { connections: 0, staleRetries: 0 };

  /**
   * An https URL needs `ca` or `pinSha256`: a token sent to a server nobody checked could
   * go to anyone on the management network. Throws a BmcApiError (status 0) otherwise.
   */
  constructor(readonly baseUrl: string, private readonly token: string | undefined, options: BmcApiClientOptions = {}) {
    this.options = options;
    try { this.url = new URL(baseUrl); } catch { throw new BmcApiError(0, `${baseUrl} is not a URL`, undefined); }
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') throw new BmcApiError(0, `${baseUrl}: only http and https URLs are supported`, undefined);
    if (options.pinSha256 !== undefined) {
      const pin = options.pinSha256.replace(/:/g, '').toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(pin)) throw new BmcApiError(0, `pinSha256 must be a SHA-256 fingerprint (64 hex digits), got ${JSON.stringify(options.pinSha256)}`, undefined);
      this.pin = pin;
    }
    if (this.url.protocol === 'https:' && this.pin === undefined && options.ca === undefined) {
      throw new BmcApiError(0, `${baseUrl}: an https BMC needs the CA to check its certificate against (ca) or its certificate's SHA-256 fingerprint (pinSha256, `
        + 'the BMC\'s tls-cert.sha256); this client never sends a token to an unchecked server', undefined);
    }
    const host = this.host();
    const port = this.port();
    this.pool = new BmcAgent(this.url.protocol === 'https:' ? () => this.connectTls(host, port) : undefined, () => { this.stats.connections++; });
  }

  private host(): string { return this.url.hostname.replace(/^\[(.*)\]$/, '$1'); }
  private port(): number { return Number(this.url.port || (this.url.protocol === 'https:' ? 443 : 80)); }

  /** Closes the kept-alive connection (a client that is done; an idle one holds no process open anyway). */
  close(): void { this.pool.destroy(); }

  /** Opens the TLS connection and checks the server before anything (the token) is written. */
  private connectTls(host: string, port: number): Promise<Socket> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const s = tls.connect({
        host, port, servername: isIP(host) ? undefined : host, minVersion: 'TLSv1.2',
        // Pinned: the fingerprint below is the whole check. Otherwise the CA and the name.
        ...(this.pin !== undefined ? { rejectUnauthorized: false } : { ca: this.options.ca, rejectUnauthorized: true }),
      });
      const timer = setTimeout(() => fail(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
      const fail = (e: Error) => { clearTimeout(timer); s.destroy(); reject(e); };
      s.once('error', fail);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        if (this.pin !== undefined) {
          const got = createHash('sha256').update(s.getPeerCertificate().raw).digest('hex');
          if (got !== this.pin) { fail(new Error(`the server's certificate has SHA-256 fingerprint ${got}, not the pinned ${this.pin}: not this BMC (or its certificate changed)`)); return; }
        }
        s.off('error', fail);
        resolve(s);
      });
    });
  }

  /**
   * Raw request: resolves with status and parsed JSON body (no throw on HTTP errors; the
   * body is the text when it is not JSON). `token` overrides the client's token; null
   * sends no Authorization header. Rejects with a BmcApiError (status 0) when the
   * service cannot be reached or its certificate is not the expected one.
   *
   * A request written on a kept-alive connection that fails before any answer (the server
   * closed it while idle, or restarted) is sent once more, on a fresh connection. A
   * failure there is reported. An anchor the server did record before it died may so be
   * sent twice, one right after the other, which the verifier reads as a resend of the same
   * checkpoint; none is lost, and none is sent out of order (one request at a time).
   */
  async request(method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = this.token ?? null): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    if (payload) { headers['content-type'] = 'application/json'; headers['content-length'] = String(payload.length); }
    const target = (this.url.pathname.replace(/\/$/, '') + path) || '/';
    const ctl = new AbortController();
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      try {
        return await this.once(method, target, headers, payload, ctl.signal);
      } catch (e) {
        if (!(e instanceof StaleSocketError) || ctl.signal.aborted) throw e;
        this.stats.staleRetries++;
        this.pool.dropIdle();
        return await this.once(method, target, headers, payload, ctl.signal);
      }
    } catch (e) {
      const cause = e instanceof StaleSocketError ? e.cause : e;
      const reason = ctl.signal.aborted ? `no complete answer within ${timeoutMs} ms` : (cause as Error).message;
      const err = new BmcApiError(0, `${method} ${path}: no answer from ${this.baseUrl}: ${reason}`, undefined);
      Object.defineProperty(err, 'cause', { value: cause });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One attempt; a failure on a reused socket before any answer is a StaleSocketError. */
  private once(method: string, target: string, headers: Record<string, string>, payload: Buffer | undefined, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
    return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      let answered = false;
      const req = http.request({ host: this.host(), port: this.port(), method, path: target, headers, signal, agent: this.pool }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_RESPONSE_BYTES) { req.destroy(new Error(`the response is larger than ${MAX_RESPONSE_BYTES} bytes`)); return; }
          chunks.push(d);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        reject(!answered && req.reusedSocket && STALE_SOCKET_CODES.has(e.code ?? '') ? new StaleSocketError(e) : e);
      });
      req.end(payload);
    });
  }

  private async ok(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ResponseBody> {
    const r = await this.request(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new BmcApiError(r.status, `${method} ${path}: HTTP ${r.status}: ${errorMessage(r.body)}`, r.body);
    return new ResponseBody(`${method} ${path}`, r.status, r.body);
  }

  async anchor(anchorHex: string): Promise<AnchorEntry> {
    const b = await this.ok('POST', Paths.anchors, { Anchor: anchorHex });
    return b.anchorEntry(b.raw, '#');
  }

  /** One page of the anchor list: anchors from seq `from` on, at most `limit` (the BMC's default and maximum apply). */
  async anchorPage(from = 1, limit?: number): Promise<AnchorPage> {
    const q = `?from=${from}${limit === undefined ? '' : `&limit=${limit}`}`;
    const b = await this.ok('GET', Paths.anchors + q);
    const o = b.root();
    const pcr = b.integer(o, 'PCR', '#');
    const total = b.integer(o, 'Total', '#');
    const next = o.NextFrom;
    const nextFrom = next === null ? null : b.integer(o, 'NextFrom', '#');
    const members = o.Members;
    if (!Array.isArray(members)) return b.fail('#/Members', `is ${describe(members)}, expected an array`);
    const entries = members.map((m, i) => b.anchorEntry(m, `#/Members/${i}`));
    // Seqs are contiguous from `from`: a page that skips or repeats one is not what was asked for.
    entries.forEach((e, i) => { if (e.seq !== from + i) b.fail(`#/Members/${i}/seq`, `is ${e.seq}, expected ${from + i}`); });
    if (nextFrom !== null && (entries.length === 0 || nextFrom !== from + entries.length)) b.fail('#/NextFrom', `is ${nextFrom}, expected ${from + entries.length} after this page`);
    return { PCR: pcr, total, from, nextFrom, Members: entries };
  }

  /** The whole anchor list, read page by page (as it was when the last page was read). */
  async anchors(): Promise<{ PCR: number; Members: AnchorEntry[] }> {
    const all: AnchorEntry[] = [];
    let from: number | null = 1;
    let pcr = -1;
    while (from !== null) {
      const page: AnchorPage = await this.anchorPage(from);
      pcr = page.PCR;
      all.push(...page.Members);
      from = page.nextFrom;
    }
    return { PCR: pcr, Members: all };
  }

  async signedMeasurements(nonce: Buffer, selection?: PcrSelection[], scheme?: SignatureScheme): Promise<SignedMeasurements> {
    const body: Record<string, unknown> = { Nonce: nonce.toString('hex') };
    if (selection) body.PCRSelection = marshalPcrSelections(selection).toString('base64');
    if (scheme) body.Scheme = marshalSignatureScheme(scheme).toString('base64');
    const b = await this.ok('POST', Paths.getSignedMeasurements, body);
    const bytes = b.base64(b.root(), 'SignedMeasurements', '#');
    return b.decode('#/SignedMeasurements', bytes, parseSignedMeasurements);
  }

  async attestationKey(): Promise<KeyInfo> {
    const b = await this.ok('GET', Paths.attestationKey);
    const o = b.root();
    const bytes = b.base64(o, 'PublicArea', '#');
    return {
      algorithm: b.string(o, 'Algorithm', '#'), public: b.decode('#/PublicArea', bytes, unmarshalPublic), publicBytes: bytes,
      name: b.hex(o, 'KeyName', '#'), pem: b.string(o, 'PublicKeyPEM', '#'),
    };
  }

  async endorsementKey(): Promise<KeyInfo & { certificatePem: string | null; chainPems: string[] }> {
    const b = await this.ok('GET', Paths.ekCertificate);
    const o = b.root();
    const rawCert = o.CertificateString;
    const cert = rawCert === null || typeof rawCert === 'string' ? rawCert : b.fail('#/CertificateString', `is ${describe(rawCert)}, expected a PEM string or null`);
    const v = b.object(b.object(o.Oem, '#/Oem').Vigil, '#/Oem/Vigil');
    const at = '#/Oem/Vigil';
    const bytes = b.base64(v, 'PublicArea', at);
    const chain = v.CertificateChain ?? [];
    if (!Array.isArray(chain)) return b.fail(`${at}/CertificateChain`, `is ${describe(chain)}, expected an array of PEM strings`);
    const chainPems = chain.map((c: unknown, i) => (typeof c === 'string' ? c : b.fail(`${at}/CertificateChain/${i}`, `is ${describe(c)}, expected a PEM string`)));
    return {
      algorithm: b.string(v, 'Algorithm', at), public: b.decode(`${at}/PublicArea`, bytes, unmarshalPublic), publicBytes: bytes,
      name: b.hex(v, 'Name', at), pem: b.string(v, 'PublicKeyPEM', at), certificatePem: cert, chainPems,
    };
  }

  async activateCredential(credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    const b = await this.ok('POST', Paths.activateCredential, { CredentialBlob: credentialBlob.toString('base64'), Secret: secret.toString('base64') });
    return b.base64(b.root(), 'CertInfo', '#');
  }
}
