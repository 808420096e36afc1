// A client of the BMC API for the host (anchors) and the verifier (quotes, keys,
// credential activation). Every failure is a BmcApiError: HTTP errors with the service's
// message, an unreachable service, and answers whose body is not what the API defines.
// Bodies come from the network, so each value read is checked before it is used; a
// wrong one names the property, rather than surfacing later as a TypeError.
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

export class BmcApiClient {
  constructor(readonly baseUrl: string, private readonly token: string | undefined) {}

  /**
   * Raw request: resolves with status and parsed JSON body (no throw on HTTP errors; the
   * body is the text when it is not JSON). `token` overrides the client's token; null
   * sends no Authorization header. Rejects with a BmcApiError (status 0) when the
   * service cannot be reached.
   */
  async request(method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = this.token ?? null): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      text = await res.text();
    } catch (e) {
      // fetch reports a refused connection or a reset as TypeError('fetch failed') with the reason in cause.
      const reason = (e as { cause?: { message?: unknown } }).cause?.message;
      const err = new BmcApiError(0, `${method} ${path}: no answer from ${this.baseUrl}: ${typeof reason === 'string' ? reason : (e as Error).message}`, undefined);
      Object.defineProperty(err, 'cause', { value: e });
      throw err;
    }
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
    return { status: res.status, body: parsed };
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

  async anchors(): Promise<{ PCR: number; Members: AnchorEntry[] }> {
    const b = await this.ok('GET', Paths.anchors);
    const o = b.root();
    const pcr = b.integer(o, 'PCR', '#');
    const members = o.Members;
    if (!Array.isArray(members)) return b.fail('#/Members', `is ${describe(members)}, expected an array`);
    return { PCR: pcr, Members: members.map((m, i) => b.anchorEntry(m, `#/Members/${i}`)) };
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

  async endorsementKey(): Promise<KeyInfo & { certificatePem: string | null }> {
    const b = await this.ok('GET', Paths.ekCertificate);
    const o = b.root();
    const rawCert = o.CertificateString;
    const cert = rawCert === null || typeof rawCert === 'string' ? rawCert : b.fail('#/CertificateString', `is ${describe(rawCert)}, expected a PEM string or null`);
    const v = b.object(b.object(o.Oem, '#/Oem').Vigil, '#/Oem/Vigil');
    const at = '#/Oem/Vigil';
    const bytes = b.base64(v, 'PublicArea', at);
    return {
      algorithm: b.string(v, 'Algorithm', at), public: b.decode(`${at}/PublicArea`, bytes, unmarshalPublic), publicBytes: bytes,
      name: b.hex(v, 'Name', at), pem: b.string(v, 'PublicKeyPEM', at), certificatePem: cert,
    };
  }

  async activateCredential(credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    const b = await this.ok('POST', Paths.activateCredential, { CredentialBlob: credentialBlob.toString('base64'), Secret: secret.toString('base64') });
    return b.base64(b.root(), 'CertInfo', '#');
  }
}
