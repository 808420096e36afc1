// Key templates: the TCG EK Credential Profile (2.x) "low range" EK templates, and the
// attestation key this project uses. Values come from the profile, not from any tool.
import { Alg, EccCurve, ObjectAttr } from './constants.js';
import { NO_SCHEME, NO_SYMMETRIC, type EccPublic, type RsaPublic, type TpmPublic } from './structures.js';

/**
 * The EK authPolicy: PolicySecret(TPM_RH_ENDORSEMENT) computed with SHA-256, i.e.
 * H(0^32 ‖ TPM_CC_PolicySecret ‖ Name(TPM_RH_ENDORSEMENT)) then H(that ‖ policyRef="").
 */
export const EK_POLICY_SHA256 = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

/** NV indices where the EK profile puts EK certificates for the low-range templates. */
export const EK_CERT_NV_INDEX = { rsa: 0x01c00002, ecc: 0x01c0000a } as const;
/** Persistent handles the EK profile recommends for the EKs (swtpm_setup uses the RSA one). */
export const EK_PERSISTENT_HANDLE = { rsa: 0x81010001, ecc: 0x81010002 } as const;

const EK_ATTRIBUTES = ObjectAttr.fixedTPM | ObjectAttr.fixedParent | ObjectAttr.sensitiveDataOrigin
  | ObjectAttr.adminWithPolicy | ObjectAttr.restricted | ObjectAttr.decrypt;

/** EK template L-1: RSA 2048, AES-128-CFB storage key, SHA-256 name, the EK policy. */
export function ekTemplateRsa2048(): RsaPublic {
  return {
    type: 'rsa', nameAlg: Alg.SHA256, objectAttributes: EK_ATTRIBUTES, authPolicy: Buffer.from(EK_POLICY_SHA256),
    symmetric: { algorithm: Alg.AES, keyBits: 128, mode: Alg.CFB }, scheme: { ...NO_SCHEME },
    keyBits: 2048, exponent: 0, modulus: Buffer.alloc(256),
  };
}

/** EK template L-2: ECC NIST P-256, AES-128-CFB storage key, SHA-256 name, the EK policy. */
export function ekTemplateEccP256(): EccPublic {
  return {
    type: 'ecc', nameAlg: Alg.SHA256, objectAttributes: EK_ATTRIBUTES, authPolicy: Buffer.from(EK_POLICY_SHA256),
    symmetric: { algorithm: Alg.AES, keyBits: 128, mode: Alg.CFB }, scheme: { ...NO_SCHEME },
    curveId: EccCurve.NIST_P256, kdf: { ...NO_SCHEME }, x: Buffer.alloc(32), y: Buffer.alloc(32),
  };
}

export type KeyAlgorithm = 'rsa' | 'ecc';
export function ekTemplate(alg: KeyAlgorithm): TpmPublic { return alg === 'rsa' ? ekTemplateRsa2048() : ekTemplateEccP256(); }

/**
 * The attestation key: a restricted signing key that never leaves this TPM
 * (fixedTPM, fixedParent, sensitiveDataOrigin), used with its authValue (userWithAuth).
 * Restricted means it signs only what the TPM itself produced, so a quote cannot be forged
 * by asking it to sign arbitrary bytes beginning with TPM_GENERATED_VALUE.
 */
export function akTemplate(alg: KeyAlgorithm): TpmPublic {
  const objectAttributes = ObjectAttr.fixedTPM | ObjectAttr.fixedParent | ObjectAttr.sensitiveDataOrigin
    | ObjectAttr.userWithAuth | ObjectAttr.restricted | ObjectAttr.sign;
  if (alg === 'rsa') {
    return {
      type: 'rsa', nameAlg: Alg.SHA256, objectAttributes, authPolicy: Buffer.alloc(0), symmetric: { ...NO_SYMMETRIC },
      scheme: { scheme: Alg.RSASSA, hashAlg: Alg.SHA256 }, keyBits: 2048, exponent: 0, modulus: Buffer.alloc(0),
    };
  }
  return {
    type: 'ecc', nameAlg: Alg.SHA256, objectAttributes, authPolicy: Buffer.alloc(0), symmetric: { ...NO_SYMMETRIC },
    scheme: { scheme: Alg.ECDSA, hashAlg: Alg.SHA256 }, curveId: EccCurve.NIST_P256, kdf: { ...NO_SCHEME },
    x: Buffer.alloc(0), y: Buffer.alloc(0),
  };
}
