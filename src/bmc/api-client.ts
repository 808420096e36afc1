// A client of the BMC API for the host (anchors) and the verifier (quotes, keys,
// credential activation). Throws BmcApiError with the HTTP status and the service's message.
import {
  marshalPcrSelections, marshalSignatureScheme, unmarshalPublic,
  type PcrSelection, type SignatureScheme, type TpmPublic,
} from '../tpm/index.js';
import type { AnchorEntry } from './anchors.js';
import { Paths, parseSignedMeasurements, type SignedMeasurements } from './redfish.js';

export class BmcApiError extends Error {
  readonly code = 'BMC_API';
  constructor(readonly status: number, message: string, readonly body: unknown) { super(message); this.name = 'BmcApiError'; }
}

export interface KeyInfo { algorithm: string; public: TpmPublic; publicBytes: Buffer; name: Buffer; pem: string }

export class BmcApiClient {
  constructor(readonly baseUrl: string, private readonly token: string | undefined) {}

  /**
   * Raw request: resolves with status and parsed JSON body (no throw on HTTP errors).
   * `token` overrides the client's token; null sends no Authorization header.
   */
  async request(method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = this.token ?? null): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
    return { status: res.status, body: parsed };
  }

  private async ok<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const r = await this.request(method, path, body);
    if (r.status < 200 || r.status >= 300) {
      const msg = (r.body as { error?: { message?: string } } | undefined)?.error?.message ?? String(r.body);
      throw new BmcApiError(r.status, `${method} ${path}: HTTP ${r.status}: ${msg}`, r.body);
    }
    return r.body as T;
  }

  async anchor(anchorHex: string): Promise<AnchorEntry> { return this.ok('POST', Paths.anchors, { Anchor: anchorHex }); }
  async anchors(): Promise<{ PCR: number; Members: AnchorEntry[] }> { return this.ok('GET', Paths.anchors); }

  async signedMeasurements(nonce: Buffer, selection?: PcrSelection[], scheme?: SignatureScheme): Promise<SignedMeasurements> {
    const body: Record<string, unknown> = { Nonce: nonce.toString('hex') };
    if (selection) body.PCRSelection = marshalPcrSelections(selection).toString('base64');
    if (scheme) body.Scheme = marshalSignatureScheme(scheme).toString('base64');
    const r = await this.ok<{ SignedMeasurements: string }>('POST', Paths.getSignedMeasurements, body);
    return parseSignedMeasurements(Buffer.from(r.SignedMeasurements, 'base64'));
  }

  async attestationKey(): Promise<KeyInfo> {
    const r = await this.ok<{ Algorithm: string; PublicArea: string; KeyName: string; PublicKeyPEM: string }>('GET', Paths.attestationKey);
    const bytes = Buffer.from(r.PublicArea, 'base64');
    return { algorithm: r.Algorithm, public: unmarshalPublic(bytes), publicBytes: bytes, name: Buffer.from(r.KeyName, 'hex'), pem: r.PublicKeyPEM };
  }

  async endorsementKey(): Promise<KeyInfo & { certificatePem: string | null }> {
    const r = await this.ok<{ CertificateString: string | null; Oem: { Vigil: { Algorithm: string; PublicArea: string; Name: string; PublicKeyPEM: string } } }>('GET', Paths.ekCertificate);
    const v = r.Oem.Vigil;
    const bytes = Buffer.from(v.PublicArea, 'base64');
    return { algorithm: v.Algorithm, public: unmarshalPublic(bytes), publicBytes: bytes, name: Buffer.from(v.Name, 'hex'), pem: v.PublicKeyPEM, certificatePem: r.CertificateString };
  }

  async activateCredential(credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    const r = await this.ok<{ CertInfo: string }>('POST', Paths.activateCredential, { CredentialBlob: credentialBlob.toString('base64'), Secret: secret.toString('base64') });
    return Buffer.from(r.CertInfo, 'base64');
  }
}
