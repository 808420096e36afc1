// The endorsement and attestation keys, built from the client's commands: the EK from
// the TCG template, its certificate from NV, an AK under the EK (endorsement hierarchy),
// and credential activation with the EK's PolicySecret(TPM_RH_ENDORSEMENT) policy.
import crypto from 'node:crypto';
import { Handle } from './constants.js';
import { passwordSession } from './command.js';
import { TpmResponseError, TpmVerifyError } from './errors.js';
import { akTemplate, EK_CERT_NV_INDEX, ekTemplate, type KeyAlgorithm } from './templates.js';
import { publicKeyFromTpm, samePublicKey } from './verifier.js';
import type { TpmClient, PublicArea } from './client.js';

export interface LoadedKey {
  handle: number;
  outPublic: PublicArea;
  /** The TPM's name for the key (nameAlg ‖ digest of its public area). */
  name: Buffer;
}

/** Creates (re-derives) the EK of the standard low-range template; same TPM, same key. */
export async function createEk(client: TpmClient, alg: KeyAlgorithm): Promise<LoadedKey> {
  const r = await client.createPrimary(Handle.ENDORSEMENT, ekTemplate(alg));
  return { handle: r.handle, outPublic: r.outPublic, name: r.name };
}

/**
 * The EK certificate (DER) from its NV index, or undefined when the TPM has none. The
 * index may be larger than the certificate; the DER length decides where it ends.
 */
export async function readEkCertificate(client: TpmClient, alg: KeyAlgorithm): Promise<Buffer | undefined> {
  const index = EK_CERT_NV_INDEX[alg];
  try {
    await client.nvReadPublic(index);
  } catch (e) {
    if (e instanceof TpmResponseError) return undefined;
    throw e;
  }
  const raw = await client.nvRead(index);
  return derPrefix(raw);
}

function derPrefix(raw: Buffer): Buffer {
  // A DER SEQUENCE: 0x30, then a short or long length.
  if (raw.length < 2 || raw[0] !== 0x30) return raw;
  const first = raw[1] as number;
  if (first < 0x80) return raw.subarray(0, 2 + first);
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (raw[2 + i] ?? 0);
  return raw.subarray(0, Math.min(raw.length, 2 + n + len));
}

// ---- X.509 extensions node:crypto does not decode (keyUsage bits, SAN directoryName) ----

interface Tlv { tag: number; start: number; body: Buffer; end: number }
/** One DER TLV at `pos` of `buf` (definite lengths only, as DER requires). */
function tlv(buf: Buffer, pos: number): Tlv {
  const tag = buf[pos];
  let len = buf[pos + 1];
  if (tag === undefined || len === undefined) throw new TpmVerifyError('the certificate is truncated');
  let off = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new TpmVerifyError('the certificate has a DER length it cannot hold');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[off + i] ?? 0);
    off += n;
  }
  if (off + len > buf.length) throw new TpmVerifyError('the certificate is truncated');
  return { tag, start: pos, body: buf.subarray(off, off + len), end: off + len };
}
function children(body: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = 0; pos < body.length; ) { const t = tlv(body, pos); out.push(t); pos = t.end; }
  return out;
}
function oidString(body: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of body) { v = v * 128 + (b & 0x7f); if (!(b & 0x80)) { parts.push(v); v = 0; } }
  const first = parts.shift() ?? 0;
  return [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80, ...parts].join('.');
}

/** The extensions of a DER certificate: OID → extnValue contents. */
function extensions(der: Buffer): Map<string, Buffer> {
  const cert = children(tlv(der, 0).body);
  const tbs = children((cert[0] as Tlv).body);
  const ext = tbs.find((t) => t.tag === 0xa3);
  const out = new Map<string, Buffer>();
  if (!ext) return out;
  for (const e of children(children(ext.body)[0]?.body ?? Buffer.alloc(0))) {
    const f = children(e.body);
    const oid = f[0];
    const value = f[f.length - 1];
    if (oid?.tag === 0x06 && value?.tag === 0x04) out.set(oidString(oid.body), value.body);
  }
  return out;
}

const OID = {
  keyUsage: '2.5.29.15', basicConstraints: '2.5.29.19', subjectAltName: '2.5.29.17', extKeyUsage: '2.5.29.37',
  tcgKpEkCertificate: '2.23.133.8.1', tpmManufacturer: '2.23.133.2.1', tpmModel: '2.23.133.2.2', tpmVersion: '2.23.133.2.3',
} as const;
/** keyUsage bits in the BIT STRING's first byte (RFC 5280 4.2.1.3). */
const KeyUsageBit = { digitalSignature: 0x80, keyEncipherment: 0x20, keyAgreement: 0x08, keyCertSign: 0x04 } as const;

/** The keyUsage bits (first byte), or undefined when the certificate has no keyUsage. */
function keyUsageBits(der: Buffer): number | undefined {
  const v = extensions(der).get(OID.keyUsage);
  if (!v) return undefined;
  const bits = tlv(v, 0).body;
  return bits[1] ?? 0; // bits[0] is the count of unused bits
}
/** basicConstraints cA, read from the extension itself (node's `ca` also folds in keyUsage). */
function basicConstraintsCa(der: Buffer): boolean {
  const v = extensions(der).get(OID.basicConstraints);
  if (!v) return false;
  const first = children(tlv(v, 0).body)[0];
  return first?.tag === 0x01 && (first.body[0] ?? 0) !== 0;
}
function extKeyUsage(der: Buffer): string[] | undefined {
  const v = extensions(der).get(OID.extKeyUsage);
  return v ? children(tlv(v, 0).body).map((t) => oidString(t.body)) : undefined;
}
/** The TPM manufacturer/model/version attributes of the SAN's directoryName, or undefined without a SAN. */
function tpmSan(der: Buffer): Map<string, string> | undefined {
  const v = extensions(der).get(OID.subjectAltName);
  if (!v) return undefined;
  const out = new Map<string, string>();
  for (const name of children(tlv(v, 0).body)) {
    if (name.tag !== 0xa4) continue; // [4] directoryName
    for (const rdn of children(children(name.body)[0]?.body ?? Buffer.alloc(0))) {
      for (const atv of children(rdn.body)) {
        const [oid, value] = children(atv.body);
        if (oid && value) out.set(oidString(oid.body), value.body.toString('utf8'));
      }
    }
  }
  return out;
}

function describeCert(c: crypto.X509Certificate): string { return `"${c.subject.replace(/\n/g, ', ')}"`; }

function checkValidity(c: crypto.X509Certificate, now: Date, what: string): void {
  const from = new Date(c.validFrom);
  const to = new Date(c.validTo);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new TpmVerifyError(`${what} ${describeCert(c)} has validity dates that do not parse`);
  if (now < from) throw new TpmVerifyError(`${what} ${describeCert(c)} is not valid before ${from.toISOString()} (now ${now.toISOString()})`);
  if (now > to) throw new TpmVerifyError(`${what} ${describeCert(c)} expired on ${to.toISOString()} (now ${now.toISOString()})`);
}

function checkIssuerCa(c: crypto.X509Certificate, what: string): void {
  // basicConstraints cA: only a CA may issue certificates; and a CA's keyUsage, when it
  // has one, must allow certificate signing.
  // (keyUsage first: OpenSSL's cA answer is also false for a CA whose keyUsage lacks keyCertSign.)
  const ku = keyUsageBits(c.raw);
  if (ku !== undefined && !(ku & KeyUsageBit.keyCertSign)) throw new TpmVerifyError(`${what} ${describeCert(c)} signed the chain but its keyUsage does not allow keyCertSign`);
  if (!basicConstraintsCa(c.raw)) throw new TpmVerifyError(`${what} ${describeCert(c)} signed the chain but is not a CA (basicConstraints cA is not set)`);
}

export interface EkCertificateCheckOptions {
  /** Intermediate CA certificates (PEM), e.g. the chain the BMC serves; never trusted on their own. */
  intermediates?: readonly string[];
  /** The time to check validity at (default now). */
  now?: Date;
}

/**
 * Checks an EK certificate (TCG EK Credential Profile): its key is the EK's; it is valid
 * now; it is not a CA; its keyUsage, where present, allows keyEncipherment (RSA) or
 * keyAgreement (ECC); its extendedKeyUsage, where present, holds tcg-kp-EKCertificate;
 * its subjectAltName, where present, names the TPM's manufacturer, model and version; and
 * it chains, through `intermediates`, to one of `trustAnchors` (the operator's trust
 * store), every issuer a valid CA allowed to sign certificates.
 */
export function checkEkCertificate(certDer: Buffer, ekPublic: PublicArea, trustAnchors: readonly string[], options: EkCertificateCheckOptions = {}): crypto.X509Certificate {
  const now = options.now ?? new Date();
  const cert = new crypto.X509Certificate(certDer);
  if (!samePublicKey(cert.publicKey, publicKeyFromTpm(ekPublic.public))) throw new TpmVerifyError('the EK certificate is for a different key than this TPM\'s EK');
  checkValidity(cert, now, 'the EK certificate');
  if (basicConstraintsCa(cert.raw)) throw new TpmVerifyError('the EK certificate is a CA certificate (basicConstraints cA is set)');
  const ku = keyUsageBits(cert.raw);
  const wantKu = ekPublic.public.type === 'rsa' ? 'keyEncipherment' : 'keyAgreement';
  if (ku !== undefined && !(ku & KeyUsageBit[wantKu])) throw new TpmVerifyError(`the EK certificate's keyUsage does not allow ${wantKu}, which an ${ekPublic.public.type.toUpperCase()} EK is for`);
  const eku = extKeyUsage(cert.raw);
  if (eku !== undefined && !eku.includes(OID.tcgKpEkCertificate)) throw new TpmVerifyError(`the EK certificate's extendedKeyUsage (${eku.join(', ')}) does not include tcg-kp-EKCertificate (${OID.tcgKpEkCertificate})`);
  const san = tpmSan(cert.raw);
  if (san !== undefined) {
    for (const [oid, name] of [[OID.tpmManufacturer, 'manufacturer'], [OID.tpmModel, 'model'], [OID.tpmVersion, 'version']] as const) {
      if (!san.has(oid)) throw new TpmVerifyError(`the EK certificate's subjectAltName does not name the TPM ${name} (${oid})`);
    }
  }
  const anchors = trustAnchors.map((p) => new crypto.X509Certificate(p));
  const intermediates = (options.intermediates ?? []).map((p) => new crypto.X509Certificate(p));
  const signedBy = (c: crypto.X509Certificate, by: crypto.X509Certificate) => c.checkIssued(by) && c.verify(by.publicKey);
  let current = cert;
  for (let depth = 0; depth < 8; depth++) {
    const anchor = anchors.find((c) => signedBy(current, c));
    if (anchor) {
      checkIssuerCa(anchor, 'the trusted CA');
      checkValidity(anchor, now, 'the trusted CA');
      return cert;
    }
    const issuer = intermediates.find((c) => signedBy(current, c) && !c.raw.equals(current.raw));
    if (!issuer) {
      // OpenSSL's issuer check also refuses an issuer whose keyUsage lacks keyCertSign: say so when that is why.
      const cur = current;
      const signer = [...anchors, ...intermediates].find((c) => cur.verify(c.publicKey));
      if (signer) checkIssuerCa(signer, anchors.includes(signer) ? 'the trusted CA' : 'the intermediate CA');
      throw new TpmVerifyError(`the certificate ${describeCert(current)} is not signed by any trusted CA${intermediates.length ? ' or given intermediate' : ''}`);
    }
    checkIssuerCa(issuer, 'the intermediate CA');
    checkValidity(issuer, now, 'the intermediate CA');
    current = issuer;
  }
  throw new TpmVerifyError('the EK certificate chain is too long');
}

/** The AK blob as Create returned it, so the same key can be loaded again later. */
export interface AkBlob { outPrivate: Buffer; outPublic: PublicArea }

/** Creates an AK as a child of the EK (authorized with the EK policy). */
export async function createAk(client: TpmClient, ekHandle: number, alg: KeyAlgorithm): Promise<AkBlob> {
  const r = await client.withPolicySecret(Handle.ENDORSEMENT, (s) => client.create(ekHandle, s, akTemplate(alg)));
  return { outPrivate: r.outPrivate, outPublic: r.outPublic };
}

export async function loadAk(client: TpmClient, ekHandle: number, blob: AkBlob): Promise<LoadedKey> {
  const r = await client.withPolicySecret(Handle.ENDORSEMENT, (s) => client.load(ekHandle, s, blob.outPrivate, blob.outPublic.bytes));
  return { handle: r.handle, outPublic: blob.outPublic, name: r.name };
}

/** TPM2_ActivateCredential for `akHandle` with the EK: returns the secret the verifier protected. */
export function activateCredential(client: TpmClient, akHandle: number, ekHandle: number, credentialBlob: Uint8Array, secret: Uint8Array): Promise<Buffer> {
  return client.withPolicySecret(Handle.ENDORSEMENT, (ekSession) =>
    client.activateCredential(akHandle, ekHandle, credentialBlob, secret, { activate: passwordSession(), key: ekSession }));
}
