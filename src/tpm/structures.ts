// TPM 2.0 Part 2 structures as TypeScript values, with their marshal and unmarshal.
// Unions are discriminated the way the specification selects them (by the type or
// algorithm field that precedes them).
import { Alg, Capability, HashInfo, Tag, TPM_GENERATED_VALUE } from './constants.js';
import { TpmReader, TpmWriter } from './marshal.js';

// ---- limits (from the reference implementation's defaults; generous for any TPM) ----
const MAX_DIGEST = 64;
/** TPM2B_DATA holds at most sizeof(TPMT_HA) = 2 + 64 bytes (Part 2, 10.4.3), not a digest. */
export const MAX_DATA = 66;
const MAX_NAME = 2 + MAX_DIGEST;
const MAX_RSA_BYTES = 512;
const MAX_ECC_BYTES = 66;
const MAX_PCR_BANKS = 16;
const MAX_PCR_SELECT = 32;
const MAX_LIST = 1024;

// ---- algorithm details ----

/** TPMT_SYM_DEF_OBJECT. `algorithm` NULL means none (keyBits and mode are then 0). */
export interface SymmetricDefinition { algorithm: number; keyBits: number; mode: number }
export const NO_SYMMETRIC: SymmetricDefinition = { algorithm: Alg.NULL, keyBits: 0, mode: 0 };

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME. `hashAlg` is 0 for schemes without one. */
export interface Scheme { scheme: number; hashAlg: number; count?: number }
export const NO_SCHEME: Scheme = { scheme: Alg.NULL, hashAlg: 0 };

const SCHEMES_WITH_HASH = new Set<number>([Alg.RSASSA, Alg.RSAPSS, Alg.OAEP, Alg.ECDSA, Alg.ECDH, Alg.ECDAA, Alg.ECSCHNORR, Alg.ECMQV, 0x001b /* SM2 */, Alg.MGF1, Alg.KDF1_SP800_56A, Alg.KDF2, Alg.KDF1_SP800_108, Alg.HMAC]);

function writeSymmetric(w: TpmWriter, s: SymmetricDefinition): void {
  w.u16(s.algorithm);
  if (s.algorithm !== Alg.NULL) w.u16(s.keyBits).u16(s.mode);
}
function readSymmetric(r: TpmReader, field: string): SymmetricDefinition {
  const algorithm = r.u16(`${field}.algorithm`);
  if (algorithm === Alg.NULL) return { ...NO_SYMMETRIC };
  return { algorithm, keyBits: r.u16(`${field}.keyBits`), mode: r.u16(`${field}.mode`) };
}
function writeScheme(w: TpmWriter, s: Scheme): void {
  w.u16(s.scheme);
  if (SCHEMES_WITH_HASH.has(s.scheme)) w.u16(s.hashAlg);
  if (s.scheme === Alg.ECDAA) w.u16(s.count ?? 0);
}
function readScheme(r: TpmReader, field: string): Scheme {
  const scheme = r.u16(`${field}.scheme`);
  if (scheme === Alg.NULL || scheme === Alg.RSAES) return { scheme, hashAlg: 0 };
  if (!SCHEMES_WITH_HASH.has(scheme)) r.fail(`${field}.scheme 0x${scheme.toString(16)} is not a known scheme`);
  const hashAlg = r.u16(`${field}.hashAlg`);
  if (scheme === Alg.ECDAA) return { scheme, hashAlg, count: r.u16(`${field}.count`) };
  return { scheme, hashAlg };
}

// ---- TPMT_PUBLIC ----

interface PublicCommon { nameAlg: number; objectAttributes: number; authPolicy: Buffer }
export interface RsaPublic extends PublicCommon {
  type: 'rsa'; symmetric: SymmetricDefinition; scheme: Scheme; keyBits: number;
  /** 0 means the default exponent 65537. */
  exponent: number;
  modulus: Buffer;
}
export interface EccPublic extends PublicCommon {
  type: 'ecc'; symmetric: SymmetricDefinition; scheme: Scheme; curveId: number; kdf: Scheme; x: Buffer; y: Buffer;
}
export interface KeyedHashPublic extends PublicCommon { type: 'keyedhash'; scheme: Scheme & { kdf?: number }; unique: Buffer }
export interface SymCipherPublic extends PublicCommon { type: 'symcipher'; symmetric: SymmetricDefinition; unique: Buffer }
export type TpmPublic = RsaPublic | EccPublic | KeyedHashPublic | SymCipherPublic;

const PUBLIC_TYPE_ALG = { rsa: Alg.RSA, ecc: Alg.ECC, keyedhash: Alg.KEYEDHASH, symcipher: Alg.SYMCIPHER } as const;

export function writePublic(w: TpmWriter, p: TpmPublic): void {
  w.u16(PUBLIC_TYPE_ALG[p.type]).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  switch (p.type) {
    case 'rsa':
      writeSymmetric(w, p.symmetric); writeScheme(w, p.scheme);
      w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
      break;
    case 'ecc':
      writeSymmetric(w, p.symmetric); writeScheme(w, p.scheme);
      w.u16(p.curveId); writeScheme(w, p.kdf);
      w.tpm2b(p.x).tpm2b(p.y);
      break;
    case 'keyedhash':
      w.u16(p.scheme.scheme);
      if (p.scheme.scheme === Alg.HMAC) w.u16(p.scheme.hashAlg);
      else if (p.scheme.scheme === Alg.XOR) w.u16(p.scheme.hashAlg).u16(p.scheme.kdf ?? Alg.NULL);
      w.tpm2b(p.unique);
      break;
    case 'symcipher':
      writeSymmetric(w, p.symmetric); w.tpm2b(p.unique);
      break;
  }
}

export function readPublic(r: TpmReader): TpmPublic {
  const typeAlg = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', MAX_DIGEST);
  const common = { nameAlg, objectAttributes, authPolicy };
  switch (typeAlg) {
    case Alg.RSA: {
      const symmetric = readSymmetric(r, 'parameters.symmetric');
      const scheme = readScheme(r, 'parameters.scheme');
      const keyBits = r.u16('parameters.keyBits');
      const exponent = r.u32('parameters.exponent');
      const modulus = r.tpm2b('unique.rsa', MAX_RSA_BYTES);
      return { type: 'rsa', ...common, symmetric, scheme, keyBits, exponent, modulus };
    }
    case Alg.ECC: {
      const symmetric = readSymmetric(r, 'parameters.symmetric');
      const scheme = readScheme(r, 'parameters.scheme');
      const curveId = r.u16('parameters.curveID');
      const kdf = readScheme(r, 'parameters.kdf');
      const x = r.tpm2b('unique.ecc.x', MAX_ECC_BYTES);
      const y = r.tpm2b('unique.ecc.y', MAX_ECC_BYTES);
      return { type: 'ecc', ...common, symmetric, scheme, curveId, kdf, x, y };
    }
    case Alg.KEYEDHASH: {
      const s = r.u16('parameters.scheme');
      let scheme: KeyedHashPublic['scheme'] = { scheme: s, hashAlg: 0 };
      if (s === Alg.HMAC) scheme = { scheme: s, hashAlg: r.u16('parameters.scheme.hashAlg') };
      else if (s === Alg.XOR) scheme = { scheme: s, hashAlg: r.u16('parameters.scheme.hashAlg'), kdf: r.u16('parameters.scheme.kdf') };
      else if (s !== Alg.NULL) r.fail(`keyed-hash scheme 0x${s.toString(16)} is not HMAC, XOR or NULL`);
      return { type: 'keyedhash', ...common, scheme, unique: r.tpm2b('unique.keyedHash', MAX_DIGEST) };
    }
    case Alg.SYMCIPHER:
      return { type: 'symcipher', ...common, symmetric: readSymmetric(r, 'parameters.symmetric'), unique: r.tpm2b('unique.sym', MAX_DIGEST) };
    default:
      return r.fail(`public area type 0x${typeAlg.toString(16)} is not RSA, ECC, KEYEDHASH or SYMCIPHER`);
  }
}

export function marshalPublic(p: TpmPublic): Buffer {
  const w = new TpmWriter(); writePublic(w, p); return w.toBuffer();
}
/** Parses a bare TPMT_PUBLIC (no TPM2B size prefix). */
export function unmarshalPublic(buf: Buffer): TpmPublic {
  const r = new TpmReader(buf, 'TPMT_PUBLIC'); const p = readPublic(r); r.end(); return p;
}
/** Parses a TPM2B_PUBLIC (size prefix, then TPMT_PUBLIC). */
export function unmarshalPublic2b(buf: Buffer): TpmPublic {
  const r = new TpmReader(buf, 'TPM2B_PUBLIC');
  const p = r.sized('outPublic', readPublic) as TpmPublic;
  r.end();
  return p;
}

// ---- PCR selection ----

/** One bank of a TPML_PCR_SELECTION: a hash algorithm and the PCR indices chosen in it. */
export interface PcrSelection { hashAlg: number; pcrs: number[] }

export function writePcrSelections(w: TpmWriter, sels: readonly PcrSelection[]): void {
  w.u32(sels.length);
  for (const s of sels) {
    const size = Math.max(3, Math.ceil((Math.max(-1, ...s.pcrs) + 1) / 8));
    const bits = Buffer.alloc(size);
    for (const pcr of s.pcrs) bits[pcr >> 3] = (bits[pcr >> 3] ?? 0) | (1 << (pcr & 7));
    w.u16(s.hashAlg).u8(size).bytes(bits);
  }
}
export function readPcrSelections(r: TpmReader, field: string): PcrSelection[] {
  const n = r.count(`${field}.count`, MAX_PCR_BANKS, 3);
  const out: PcrSelection[] = [];
  for (let i = 0; i < n; i++) {
    const hashAlg = r.u16(`${field}[${i}].hash`);
    const size = r.u8(`${field}[${i}].sizeofSelect`);
    if (size > MAX_PCR_SELECT) r.fail(`${field}[${i}].sizeofSelect ${size} exceeds ${MAX_PCR_SELECT}`);
    const bits = r.bytes(size, `${field}[${i}].pcrSelect`);
    const pcrs: number[] = [];
    for (let b = 0; b < size * 8; b++) if ((bits[b >> 3] ?? 0) & (1 << (b & 7))) pcrs.push(b);
    out.push({ hashAlg, pcrs });
  }
  return out;
}

/** A bare TPML_PCR_SELECTION, as the Redfish TPMGetSignedMeasurements action carries it. */
export function marshalPcrSelections(sels: readonly PcrSelection[]): Buffer { const w = new TpmWriter(); writePcrSelections(w, sels); return w.toBuffer(); }
export function unmarshalPcrSelections(buf: Buffer): PcrSelection[] {
  const r = new TpmReader(buf, 'TPML_PCR_SELECTION'); const s = readPcrSelections(r, 'pcrSelections'); r.end(); return s;
}

/** TPMT_SIG_SCHEME (the inScheme of TPM2_Quote). */
export interface SignatureScheme { scheme: number; hashAlg: number }
export function marshalSignatureScheme(s: SignatureScheme): Buffer {
  const w = new TpmWriter().u16(s.scheme);
  if (s.scheme !== Alg.NULL) w.u16(s.hashAlg);
  return w.toBuffer();
}
export function unmarshalSignatureScheme(buf: Buffer): SignatureScheme {
  const r = new TpmReader(buf, 'TPMT_SIG_SCHEME');
  const scheme = r.u16('scheme');
  let hashAlg = 0;
  if (scheme !== Alg.NULL) {
    if (![Alg.RSASSA, Alg.RSAPSS, Alg.ECDSA, Alg.ECSCHNORR].includes(scheme as never)) r.fail(`scheme 0x${scheme.toString(16)} is not RSASSA, RSAPSS, ECDSA, ECSCHNORR or NULL`);
    hashAlg = r.u16('details.hashAlg');
  }
  r.end();
  return { scheme, hashAlg };
}

// ---- TPMS_ATTEST ----

export interface ClockInfo { clock: bigint; resetCount: number; restartCount: number; safe: boolean }
export interface QuoteInfo { pcrSelect: PcrSelection[]; pcrDigest: Buffer }
export interface CertifyInfo { name: Buffer; qualifiedName: Buffer }
export interface Attestation {
  type: number;
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  /** Decoded for quotes and certifications; other attestation kinds keep their raw bytes. */
  attested: { kind: 'quote'; quote: QuoteInfo } | { kind: 'certify'; certify: CertifyInfo } | { kind: 'other'; raw: Buffer };
}

export function readClockInfo(r: TpmReader): ClockInfo {
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) r.fail(`clockInfo.safe ${safe} is not a TPMI_YES_NO`);
  return { clock, resetCount, restartCount, safe: safe === 1 };
}

/** Parses the bytes the TPM signed (TPMS_ATTEST, the content of TPM2B_ATTEST). */
export function unmarshalAttest(buf: Buffer): Attestation {
  const r = new TpmReader(buf, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) r.fail(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE (0xff544347): not made by a TPM`);
  const type = r.u16('type');
  const qualifiedSigner = r.tpm2b('qualifiedSigner', MAX_NAME);
  const extraData = r.tpm2b('extraData', MAX_DATA);
  const clockInfo = readClockInfo(r);
  const firmwareVersion = r.u64('firmwareVersion');
  let attested: Attestation['attested'];
  if (type === Tag.ATTEST_QUOTE) {
    const pcrSelect = readPcrSelections(r, 'attested.quote.pcrSelect');
    attested = { kind: 'quote', quote: { pcrSelect, pcrDigest: r.tpm2b('attested.quote.pcrDigest', MAX_DIGEST) } };
  } else if (type === Tag.ATTEST_CERTIFY) {
    attested = { kind: 'certify', certify: { name: r.tpm2b('attested.certify.name', MAX_NAME), qualifiedName: r.tpm2b('attested.certify.qualifiedName', MAX_NAME) } };
  } else if (type >= Tag.ATTEST_NV && type <= Tag.ATTEST_NV_DIGEST) {
    attested = { kind: 'other', raw: r.rest() };
  } else {
    return r.fail(`type 0x${type.toString(16)} is not a TPM_ST_ATTEST_* tag`);
  }
  r.end();
  return { type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested };
}

// ---- TPMT_SIGNATURE ----

export type Signature =
  | { sigAlg: typeof Alg.RSASSA | typeof Alg.RSAPSS; hashAlg: number; sig: Buffer }
  | { sigAlg: typeof Alg.ECDSA | typeof Alg.ECSCHNORR; hashAlg: number; r: Buffer; s: Buffer }
  | { sigAlg: typeof Alg.NULL };

export function writeSignature(w: TpmWriter, s: Signature): void {
  w.u16(s.sigAlg);
  if (s.sigAlg === Alg.NULL) return;
  w.u16(s.hashAlg);
  if ('sig' in s) w.tpm2b(s.sig); else w.tpm2b(s.r).tpm2b(s.s);
}
export function readSignature(r: TpmReader): Signature {
  const sigAlg = r.u16('sigAlg');
  if (sigAlg === Alg.NULL) return { sigAlg };
  const hashAlg = r.u16('signature.hash');
  if (!HashInfo[hashAlg]) r.fail(`signature.hash 0x${hashAlg.toString(16)} is not a known hash algorithm`);
  if (sigAlg === Alg.RSASSA || sigAlg === Alg.RSAPSS) return { sigAlg, hashAlg, sig: r.tpm2b('signature.sig', MAX_RSA_BYTES) };
  if (sigAlg === Alg.ECDSA || sigAlg === Alg.ECSCHNORR) {
    return { sigAlg, hashAlg, r: r.tpm2b('signature.signatureR', MAX_ECC_BYTES), s: r.tpm2b('signature.signatureS', MAX_ECC_BYTES) };
  }
  return r.fail(`sigAlg 0x${sigAlg.toString(16)} is not RSASSA, RSAPSS, ECDSA, ECSCHNORR or NULL`);
}
export function marshalSignature(s: Signature): Buffer { const w = new TpmWriter(); writeSignature(w, s); return w.toBuffer(); }
export function unmarshalSignature(buf: Buffer): Signature {
  const r = new TpmReader(buf, 'TPMT_SIGNATURE'); const s = readSignature(r); r.end(); return s;
}

// ---- NV ----

export interface NvPublic { nvIndex: number; nameAlg: number; attributes: number; authPolicy: Buffer; dataSize: number }
export function writeNvPublic(w: TpmWriter, p: NvPublic): void {
  w.u32(p.nvIndex).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy).u16(p.dataSize);
}
export function readNvPublic(r: TpmReader): NvPublic {
  return { nvIndex: r.u32('nvIndex'), nameAlg: r.u16('nameAlg'), attributes: r.u32('attributes'), authPolicy: r.tpm2b('authPolicy', MAX_DIGEST), dataSize: r.u16('dataSize') };
}
export function marshalNvPublic(p: NvPublic): Buffer { const w = new TpmWriter(); writeNvPublic(w, p); return w.toBuffer(); }

// ---- tickets, capability data ----

export interface Ticket { tag: number; hierarchy: number; digest: Buffer }
export function readTicket(r: TpmReader, field: string): Ticket {
  return { tag: r.u16(`${field}.tag`), hierarchy: r.u32(`${field}.hierarchy`), digest: r.tpm2b(`${field}.digest`, MAX_DIGEST) };
}

export type CapabilityData =
  | { capability: 'algorithms'; algorithms: { alg: number; attributes: number }[] }
  | { capability: 'handles'; handles: number[] }
  | { capability: 'commands'; commands: number[] }
  | { capability: 'pcrs'; pcrs: PcrSelection[] }
  | { capability: 'properties'; properties: { property: number; value: number }[] }
  | { capability: 'eccCurves'; curves: number[] };

export function readCapabilityData(r: TpmReader): CapabilityData {
  const cap = r.u32('capability');
  switch (cap) {
    case Capability.ALGS: {
      const n = r.count('algorithms.count', MAX_LIST, 6);
      const algorithms = [];
      for (let i = 0; i < n; i++) algorithms.push({ alg: r.u16(`algorithms[${i}].alg`), attributes: r.u32(`algorithms[${i}].attributes`) });
      return { capability: 'algorithms', algorithms };
    }
    case Capability.HANDLES: {
      const n = r.count('handles.count', MAX_LIST, 4);
      const handles = [];
      for (let i = 0; i < n; i++) handles.push(r.u32(`handles[${i}]`));
      return { capability: 'handles', handles };
    }
    case Capability.COMMANDS: {
      const n = r.count('commands.count', MAX_LIST, 4);
      const commands = [];
      for (let i = 0; i < n; i++) commands.push(r.u32(`commands[${i}]`));
      return { capability: 'commands', commands };
    }
    case Capability.PCRS:
      return { capability: 'pcrs', pcrs: readPcrSelections(r, 'assignedPCR') };
    case Capability.TPM_PROPERTIES: {
      const n = r.count('tpmProperties.count', MAX_LIST, 8);
      const properties = [];
      for (let i = 0; i < n; i++) properties.push({ property: r.u32(`tpmProperties[${i}].property`), value: r.u32(`tpmProperties[${i}].value`) });
      return { capability: 'properties', properties };
    }
    case Capability.ECC_CURVES: {
      const n = r.count('eccCurves.count', MAX_LIST, 2);
      const curves = [];
      for (let i = 0; i < n; i++) curves.push(r.u16(`eccCurves[${i}]`));
      return { capability: 'eccCurves', curves };
    }
    default:
      return r.fail(`capability 0x${cap.toString(16)} is not one this client decodes`);
  }
}
