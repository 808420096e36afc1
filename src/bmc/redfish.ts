// The Redfish-style resource paths and the wire format of SignedMeasurements, shared by
// the service and its clients.
import { TpmReader, unmarshalSignature, TpmFormatError, type Signature } from '../tpm/index.js';

export const REDFISH_ROOT = '/redfish/v1';
export const COMPONENT_INTEGRITY = `${REDFISH_ROOT}/ComponentIntegrity`;
export const TPM_RESOURCE = `${COMPONENT_INTEGRITY}/TPM_0`;
export const Paths = {
  root: REDFISH_ROOT,
  componentIntegrity: COMPONENT_INTEGRITY,
  tpm: TPM_RESOURCE,
  getSignedMeasurements: `${TPM_RESOURCE}/Actions/ComponentIntegrity.TPMGetSignedMeasurements`,
  ekCertificate: `${TPM_RESOURCE}/Certificates/EK`,
  attestationKey: `${TPM_RESOURCE}/Oem/Vigil/AttestationKey`,
  activateCredential: `${TPM_RESOURCE}/Oem/Vigil/Actions/ActivateCredential`,
  anchors: `${REDFISH_ROOT}/Oem/Vigil/Anchors`,
} as const;

export interface SignedMeasurements {
  /** TPMS_ATTEST, the bytes the AK signed. */
  attest: Buffer;
  signature: Signature;
}

/**
 * Splits SignedMeasurements as DMTF ComponentIntegrity defines it: the `quoted`
 * (TPM2B_ATTEST, size-prefixed) and `signature` (TPMT_SIGNATURE) response values of
 * TPM2_Quote, concatenated.
 */
export function parseSignedMeasurements(bytes: Buffer): SignedMeasurements {
  const r = new TpmReader(bytes, 'SignedMeasurements');
  const attest = r.tpm2b('quoted');
  if (attest.length === 0) throw new TpmFormatError('SignedMeasurements', 0, 'quoted is empty');
  return { attest, signature: unmarshalSignature(r.rest()) };
}

export function encodeSignedMeasurements(attest: Buffer, signatureBytes: Buffer): Buffer {
  const size = Buffer.alloc(2); size.writeUInt16BE(attest.length);
  return Buffer.concat([size, attest, signatureBytes]);
}
