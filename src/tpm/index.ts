// Public surface of the TPM 2.0 client library.
export * from './constants.js';
export { TpmError, TpmResponseError, TpmFormatError, TpmTransportError, TpmControlError, TpmVerifyError, TpmUsageError, TpmProcessError, type TpmErrorCode } from './errors.js';
export { decodeResponseCode, type DecodedResponseCode } from './response-code.js';
export { TpmReader, TpmWriter } from './marshal.js';
export {
  marshalPublic, unmarshalPublic, marshalPcrSelections, unmarshalPcrSelections, marshalSignatureScheme, unmarshalSignatureScheme, unmarshalPublic2b, unmarshalAttest, marshalSignature, unmarshalSignature, marshalNvPublic,
  type TpmPublic, type RsaPublic, type EccPublic, type PcrSelection, type Attestation, type ClockInfo, type Signature, type NvPublic,
  type CapabilityData, type Ticket, type SignatureScheme, type SymmetricDefinition, type Scheme,
} from './structures.js';
export { buildCommand, parseResponse, passwordSession, type AuthSession, type CommandRequest, type ParsedResponse } from './command.js';
export {
  TpmClient, Responses, decodeResponse,
  type PublicArea, type CreatePrimaryResult, type CreateResult, type LoadResult, type ReadPublicResult, type NvReadPublicResult,
  type PcrReadResult, type QuoteResult, type StartAuthSessionResult, type PolicySecretResult, type CapabilityResult, type TimeInfo, type ResponseShape, type TpmExchange, type TpmClientOptions,
} from './client.js';
export { SwtpmTcpTransport, SwtpmSocketTransport, SwtpmControl, DeviceTransport, type TpmTransport, type SwtpmTcpOptions, type SwtpmSocketOptions } from './transport.js';
export { SwtpmProcess, provisionSwtpm, freePortPair, haveProgram, killStaleSwtpm, swtpmSocketPaths, swtpmKeyPath, type ProvisionResult, type SwtpmStartOptions } from './swtpm.js';
export { EK_POLICY_SHA256, EK_CERT_NV_INDEX, EK_PERSISTENT_HANDLE, ekTemplate, ekTemplateRsa2048, ekTemplateEccP256, akTemplate, type KeyAlgorithm } from './templates.js';
export { createEk, readEkCertificate, checkEkCertificate, createAk, loadAk, activateCredential, type LoadedKey, type AkBlob, type EkCertificateCheckOptions } from './keys.js';
export {
  hash, digestSize, objectName, qualifiedName, akQualifiedName, nvIndexName, permanentHandleName, policySecretDigest, publicKeyFromTpm, publicKeyPem, samePublicKey,
  kdfa, kdfe, makeCredential, extendPcrValue, replayPcr, quotePcrDigest, verifySignature, verifyQuote, checkAkAttributes, type MadeCredential, type QuoteExpectations,
} from './verifier.js';
