// The software half of TPM attestation, for a verifier that holds no TPM: object names,
// the KDFs of Part 1 (11.4.10), MakeCredential (Part 1, 24), PCR arithmetic, and the
// checks of a quote. All cryptography is node:crypto.
import crypto, { type KeyObject } from 'node:crypto';
import { Alg, CommandCode, EccCurve, Handle, HashInfo, ObjectAttr, Tag } from './constants.js';
import { TpmUsageError, TpmVerifyError } from './errors.js';
import { TpmWriter } from './marshal.js';
import {
  marshalNvPublic, marshalPublic, unmarshalAttest,
  type Attestation, type EccPublic, type NvPublic, type PcrSelection, type Signature, type TpmPublic,
} from './structures.js';

function hashName(alg: number): string {
  const info = HashInfo[alg];
  if (!info) throw new TpmUsageError(`hash algorithm 0x${alg.toString(16)} is not supported (SHA-1/256/384/512 are)`);
  return info.name;
}
export function digestSize(alg: number): number {
  const info = HashInfo[alg];
  if (!info) throw new TpmUsageError(`hash algorithm 0x${alg.toString(16)} is not supported`);
  return info.size;
}
export function hash(alg: number, ...parts: Uint8Array[]): Buffer {
  const h = crypto.createHash(hashName(alg));
  for (const p of parts) h.update(p);
  return h.digest();
}

function u16(v: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; }
function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }
/** A KDF label as the specification uses it: the ASCII string with its terminating NUL. */
function label(s: string): Buffer { return Buffer.from(`${s}\0`, 'ascii'); }

// ---- names and policies ----

/** Name of an object: nameAlg ‖ H_nameAlg(TPMT_PUBLIC). Pass the TPM's bytes when you have them. */
export function objectName(pub: TpmPublic, publicBytes?: Uint8Array): Buffer {
  return Buffer.concat([u16(pub.nameAlg), hash(pub.nameAlg, publicBytes ?? marshalPublic(pub))]);
}
/** Name of an NV index: nameAlg ‖ H_nameAlg(TPMS_NV_PUBLIC). */
export function nvIndexName(pub: NvPublic): Buffer {
  return Buffer.concat([u16(pub.nameAlg), hash(pub.nameAlg, marshalNvPublic(pub))]);
}
/**
 * Qualified name of an object under a parent (Part 1, 16): nameAlg ‖ H_nameAlg(QN(parent)
 * ‖ Name(object)), with the object's nameAlg (the first two bytes of its name). The QN of
 * a hierarchy is its handle; a primary key's parent is its hierarchy.
 */
export function qualifiedName(parentQualifiedName: Uint8Array, objectNameBytes: Uint8Array): Buffer {
  const nameAlg = Buffer.from(objectNameBytes).readUInt16BE(0);
  return Buffer.concat([u16(nameAlg), hash(nameAlg, parentQualifiedName, objectNameBytes)]);
}
/** The qualified name of an AK made under the EK (a primary key of the endorsement hierarchy), as a quote's qualifiedSigner holds it. */
export function akQualifiedName(ekName: Uint8Array, akName: Uint8Array): Buffer {
  return qualifiedName(qualifiedName(u32(Handle.ENDORSEMENT), ekName), akName);
}

/** The name of a permanent handle is the handle itself. */
export function permanentHandleName(handle: number): Buffer { return u32(handle); }

/** policyDigest after TPM2_PolicySecret(authObjectName, policyRef) from `start` (zeros). */
export function policySecretDigest(hashAlg: number, authObjectName: Uint8Array, policyRef: Uint8Array = Buffer.alloc(0), start?: Uint8Array): Buffer {
  const d0 = start ?? Buffer.alloc(digestSize(hashAlg));
  const d1 = hash(hashAlg, d0, u32(CommandCode.PolicySecret), authObjectName);
  return hash(hashAlg, d1, policyRef);
}

// ---- keys ----

const CURVES: Record<number, { jwk: string; node: string; bytes: number }> = {
  [EccCurve.NIST_P256]: { jwk: 'P-256', node: 'prime256v1', bytes: 32 },
  [EccCurve.NIST_P384]: { jwk: 'P-384', node: 'secp384r1', bytes: 48 },
  [EccCurve.NIST_P521]: { jwk: 'P-521', node: 'secp521r1', bytes: 66 },
};
function curveOf(pub: EccPublic): { jwk: string; node: string; bytes: number } {
  const c = CURVES[pub.curveId];
  if (!c) throw new TpmUsageError(`ECC curve 0x${pub.curveId.toString(16)} is not supported (P-256, P-384, P-521 are)`);
  return c;
}
function leftPad(b: Buffer, n: number): Buffer {
  if (b.length >= n) return b;
  return Buffer.concat([Buffer.alloc(n - b.length), b]);
}

/** The public key of an RSA or ECC TPM object as a node:crypto KeyObject. */
export function publicKeyFromTpm(pub: TpmPublic): KeyObject {
  if (pub.type === 'rsa') {
    if (pub.modulus.length === 0) throw new TpmUsageError('RSA public area has no modulus (is this a template?)');
    const e = pub.exponent === 0 ? 65537 : pub.exponent;
    const eBytes = Buffer.from(e.toString(16).padStart(e.toString(16).length + (e.toString(16).length % 2), '0'), 'hex');
    return crypto.createPublicKey({ key: { kty: 'RSA', n: pub.modulus.toString('base64url'), e: eBytes.toString('base64url') }, format: 'jwk' });
  }
  if (pub.type === 'ecc') {
    const c = curveOf(pub);
    if (pub.x.length === 0) throw new TpmUsageError('ECC public area has no point (is this a template?)');
    return crypto.createPublicKey({ key: { kty: 'EC', crv: c.jwk, x: leftPad(pub.x, c.bytes).toString('base64url'), y: leftPad(pub.y, c.bytes).toString('base64url') }, format: 'jwk' });
  }
  throw new TpmUsageError(`a ${pub.type} object has no public key`);
}

/** The public key as PEM (SubjectPublicKeyInfo), the form tpm2_checkquote and openssl read. */
export function publicKeyPem(pub: TpmPublic): string {
  return publicKeyFromTpm(pub).export({ type: 'spki', format: 'pem' }).toString();
}

/** Whether two keys are the same public key (compared as DER SubjectPublicKeyInfo). */
export function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

// ---- KDFs ----

/** KDFa (SP 800-108 counter mode with HMAC), Part 1 11.4.10.2. */
export function kdfa(hashAlg: number, key: Uint8Array, use: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  const need = Math.ceil(bits / 8);
  for (let counter = 1; have < need; counter++) {
    const block = crypto.createHmac(hashName(hashAlg), key).update(u32(counter)).update(label(use)).update(contextU).update(contextV).update(u32(bits)).digest();
    out.push(block); have += block.length;
  }
  return Buffer.concat(out).subarray(0, need);
}

/** KDFe (SP 800-56A concatenation KDF), Part 1 11.4.10.3. */
export function kdfe(hashAlg: number, z: Uint8Array, use: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  const need = Math.ceil(bits / 8);
  for (let counter = 1; have < need; counter++) {
    const block = hash(hashAlg, u32(counter), z, label(use), partyU, partyV);
    out.push(block); have += block.length;
  }
  return Buffer.concat(out).subarray(0, need);
}

// ---- MakeCredential ----

export interface MadeCredential {
  /** Content of the TPM2B_ID_OBJECT: TPM2B integrityHMAC ‖ encIdentity. */
  credentialBlob: Buffer;
  /** Content of the TPM2B_ENCRYPTED_SECRET: the RSA-OAEP ciphertext or the ephemeral ECC point. */
  secret: Buffer;
}

/**
 * What TPM2_MakeCredential computes, in software: protects `credential` so that only the
 * TPM holding the private part of `ekPublic` can recover it, and only for the object
 * named `objectName` (the AK) loaded next to it.
 */
export function makeCredential(ekPublic: TpmPublic, objectNameBytes: Uint8Array, credential: Uint8Array): MadeCredential {
  if (ekPublic.type !== 'rsa' && ekPublic.type !== 'ecc') throw new TpmUsageError('MakeCredential needs an RSA or ECC storage key (an EK)');
  const nameAlg = ekPublic.nameAlg;
  const dsize = digestSize(nameAlg);
  if (credential.length > dsize) throw new TpmUsageError(`credential of ${credential.length} bytes exceeds the ${dsize}-byte digest of the EK's nameAlg`);
  const sym = ekPublic.symmetric;
  if (sym.algorithm !== Alg.AES || sym.mode !== Alg.CFB) throw new TpmUsageError('the EK must have an AES-CFB symmetric definition');

  let seed: Buffer;
  let secret: Buffer;
  if (ekPublic.type === 'rsa') {
    seed = crypto.randomBytes(dsize);
    secret = crypto.publicEncrypt({ key: publicKeyFromTpm(ekPublic), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashName(nameAlg), oaepLabel: label('IDENTITY') }, seed);
  } else {
    const c = curveOf(ekPublic);
    const eph = crypto.generateKeyPairSync('ec', { namedCurve: c.node });
    const z = crypto.diffieHellman({ privateKey: eph.privateKey, publicKey: publicKeyFromTpm(ekPublic) });
    const jwk = eph.publicKey.export({ format: 'jwk' });
    const ex = leftPad(Buffer.from(jwk.x ?? '', 'base64url'), c.bytes);
    const ey = leftPad(Buffer.from(jwk.y ?? '', 'base64url'), c.bytes);
    seed = kdfe(nameAlg, leftPad(z, c.bytes), 'IDENTITY', ex, ekPublic.x, dsize * 8);
    secret = new TpmWriter().tpm2b(ex).tpm2b(ey).toBuffer();
  }
  const symKey = kdfa(nameAlg, seed, 'STORAGE', objectNameBytes, Buffer.alloc(0), sym.keyBits);
  const cipher = crypto.createCipheriv(`aes-${sym.keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(new TpmWriter().tpm2b(credential).toBuffer()), cipher.final()]);
  const hmacKey = kdfa(nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), dsize * 8);
  const integrity = crypto.createHmac(hashName(nameAlg), hmacKey).update(encIdentity).update(objectNameBytes).digest();
  return { credentialBlob: Buffer.concat([new TpmWriter().tpm2b(integrity).toBuffer(), encIdentity]), secret };
}

// ---- PCRs ----

/** PCR_new = H(PCR_old ‖ digest). */
export function extendPcrValue(hashAlg: number, current: Uint8Array, digest: Uint8Array): Buffer {
  return hash(hashAlg, current, digest);
}
/** The value of a PCR reset to zeros and then extended with each digest in turn. */
export function replayPcr(hashAlg: number, digests: readonly Uint8Array[], start?: Uint8Array): Buffer {
  let v: Buffer = Buffer.from(start ?? Buffer.alloc(digestSize(hashAlg)));
  for (const d of digests) v = extendPcrValue(hashAlg, v, d);
  return v;
}
/** pcrDigest of a quote: H_signHash(value ‖ value ‖ ...) in selection order (bank, then PCR index). */
export function quotePcrDigest(signHashAlg: number, selection: readonly PcrSelection[], values: (hashAlg: number, pcr: number) => Uint8Array): Buffer {
  const parts: Uint8Array[] = [];
  for (const bank of selection) for (const pcr of [...bank.pcrs].sort((a, b) => a - b)) parts.push(values(bank.hashAlg, pcr));
  return hash(signHashAlg, ...parts);
}

// ---- signatures and quotes ----

/**
 * Checks a TPMT_SIGNATURE over `message` with a TPM public key. The scheme and hash are
 * pinned, never taken from the signature: the key's own scheme, or `expected` for a key
 * whose scheme is TPM_ALG_NULL (a key with a fixed scheme refuses any other `expected`).
 * A signature by another scheme or hash (a weaker one, SHA-1, say) is false.
 */
export function verifySignature(pub: TpmPublic, message: Uint8Array, signature: Signature, expected?: { scheme: number; hashAlg: number }): boolean {
  const key = publicKeyFromTpm(pub);
  if (signature.sigAlg === Alg.NULL) return false;
  const own = pub.type === 'rsa' || pub.type === 'ecc' ? pub.scheme : undefined;
  const pinned = own && own.scheme !== Alg.NULL ? own : expected;
  if (!pinned) throw new TpmUsageError('the key has no fixed signing scheme (TPM_ALG_NULL): pass the scheme the signature must use');
  if (expected && (expected.scheme !== pinned.scheme || expected.hashAlg !== pinned.hashAlg)) return false;
  if (signature.sigAlg !== pinned.scheme || signature.hashAlg !== pinned.hashAlg) return false;
  const alg = hashName(signature.hashAlg);
  if (signature.sigAlg === Alg.RSASSA) {
    if (pub.type !== 'rsa') return false;
    return crypto.verify(alg, message, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, signature.sig);
  }
  if (signature.sigAlg === Alg.RSAPSS) {
    if (pub.type !== 'rsa') return false;
    return crypto.verify(alg, message, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO }, signature.sig);
  }
  if (signature.sigAlg === Alg.ECDSA) {
    if (pub.type !== 'ecc') return false;
    const n = curveOf(pub).bytes;
    if (signature.r.length > n || signature.s.length > n) return false;
    return crypto.verify(alg, message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([leftPad(signature.r, n), leftPad(signature.s, n)]));
  }
  return false;
}

/** The attributes an attestation key must have, and why. */
const AK_ATTRIBUTES: readonly [keyof typeof ObjectAttr, string][] = [
  ['restricted', 'it must sign only what the TPM produced, or anyone with its authorization could sign a forged quote'],
  ['sign', 'it must be a signing key'],
  ['fixedTPM', 'it must never leave its TPM'],
  ['fixedParent', 'it must not be duplicated under another parent'],
  ['sensitiveDataOrigin', 'its private part must have been generated inside the TPM'],
];

/**
 * Checks that a public area describes an attestation key: restricted, sign, fixedTPM,
 * fixedParent and sensitiveDataOrigin set, decrypt clear, and a signing scheme fixed
 * in the key. Throws TpmVerifyError naming the first attribute that is wrong.
 */
export function checkAkAttributes(pub: TpmPublic): void {
  for (const [name, why] of AK_ATTRIBUTES) {
    if (!(pub.objectAttributes & ObjectAttr[name])) throw new TpmVerifyError(`the attestation key lacks the ${name} attribute: ${why}`);
  }
  if (pub.objectAttributes & ObjectAttr.decrypt) throw new TpmVerifyError('the attestation key has the decrypt attribute: a restricted key that also decrypts is a storage key, not an AK');
  if (pub.type !== 'rsa' && pub.type !== 'ecc') throw new TpmVerifyError(`the attestation key is a ${pub.type} object, not an RSA or ECC key`);
  if (pub.scheme.scheme === Alg.NULL) throw new TpmVerifyError('the attestation key has no fixed signing scheme (TPM_ALG_NULL): its quotes could be signed with any hash');
}

export interface QuoteExpectations {
  /** The nonce the verifier sent (must equal extraData). */
  nonce: Uint8Array;
  /**
   * The quote's qualifiedSigner must be the AK's qualified name: give it as pinned at
   * enrolment (`qualifiedSigner`), or give the EK's name (`ekName`) and the AK's name
   * (`akName`, computed from `akPublic` when absent) of an AK made under that EK. One of
   * the two is required: a quote whose signer is not the enrolled key is refused.
   */
  qualifiedSigner?: Uint8Array;
  ekName?: Uint8Array;
  akName?: Uint8Array;
  /** When given, the quote must cover exactly this selection... */
  pcrSelection?: readonly PcrSelection[];
  /** ...and its pcrDigest must match these values (bank alg → PCR → value). */
  pcrValues?: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
}

/**
 * Verifies a quote: the AK's attributes, the signature by the AK with the AK's own
 * scheme, TPM_GENERATED magic and quote type, qualifiedSigner = the AK's name, the nonce,
 * and, when expected values are given, the PCR selection and digest: every PCR with an
 * expected value must be in the quoted selection (a quote that selects nothing, such
 * as one over a bank the TPM lacks, proves no value). Returns the parsed attestation
 * (clock, reset and restart counters) for the caller's freshness checks.
 */
export function verifyQuote(akPublic: TpmPublic, attest: Buffer, signature: Signature, expect: QuoteExpectations): Attestation {
  checkAkAttributes(akPublic);
  if (!verifySignature(akPublic, attest, signature)) throw new TpmVerifyError('the quote signature does not verify with the attestation key (or uses another scheme or hash than the key\'s)');
  const a = unmarshalAttest(attest);
  if (a.type !== Tag.ATTEST_QUOTE || a.attested.kind !== 'quote') throw new TpmVerifyError(`attestation type 0x${a.type.toString(16)} is not a quote`);
  if (!expect.qualifiedSigner && !expect.ekName) throw new TpmUsageError('verifyQuote needs the pinned qualifiedSigner or the EK\'s name (ekName) to check who signed the quote');
  const signer = expect.qualifiedSigner ? Buffer.from(expect.qualifiedSigner) : akQualifiedName(expect.ekName as Uint8Array, expect.akName ?? objectName(akPublic));
  if (!a.qualifiedSigner.equals(signer)) throw new TpmVerifyError(`the quote's qualifiedSigner ${a.qualifiedSigner.toString('hex')} is not the attestation key's qualified name ${signer.toString('hex')}`);
  if (!a.extraData.equals(Buffer.from(expect.nonce))) throw new TpmVerifyError('the quote was made for a different nonce (replayed or for another verifier)');
  const q = a.attested.quote;
  if (expect.pcrSelection) {
    const norm = (s: readonly PcrSelection[]) => JSON.stringify(s.map((b) => [b.hashAlg, [...b.pcrs].sort((x, y) => x - y)]));
    if (norm(q.pcrSelect) !== norm(expect.pcrSelection)) throw new TpmVerifyError(`the quote covers PCRs ${norm(q.pcrSelect)}, expected ${norm(expect.pcrSelection)}`);
  }
  if (expect.pcrValues) {
    const signHash = signature.sigAlg === Alg.NULL ? Alg.SHA256 : signature.hashAlg;
    const values = expect.pcrValues;
    let expected = 0;
    for (const [alg, pcrs] of values) {
      for (const pcr of pcrs.keys()) {
        expected++;
        if (!q.pcrSelect.some((b) => b.hashAlg === alg && b.pcrs.includes(pcr))) {
          throw new TpmVerifyError(`the quote does not cover PCR ${pcr} of bank 0x${alg.toString(16)} (it selects ${JSON.stringify(q.pcrSelect.map((b) => [b.hashAlg, b.pcrs]))}): it proves nothing about that PCR`);
        }
      }
    }
    if (expected === 0) throw new TpmVerifyError('no expected PCR value given: a PCR digest check over nothing proves nothing');
    const digest = quotePcrDigest(signHash, q.pcrSelect, (alg, pcr) => {
      const v = values.get(alg)?.get(pcr);
      if (!v) throw new TpmVerifyError(`no expected value for PCR ${pcr} of bank 0x${alg.toString(16)}`);
      return v;
    });
    if (!digest.equals(q.pcrDigest)) throw new TpmVerifyError('the quoted PCR digest does not match the expected PCR values');
  }
  return a;
}
