// Public surface of the BMC service.
export { startBmcService, type BmcService, type BmcServiceOptions } from './service.js';
export { BmcApiClient, BmcApiError, type KeyInfo, type BmcApiClientOptions, type AnchorPage } from './api-client.js';
export { BmcError, type BmcErrorCode } from './errors.js';
export { DEFAULT_ANCHOR_PCR, type TpmSource } from './bmc-tpm.js';
export { Paths, parseSignedMeasurements, encodeSignedMeasurements, type SignedMeasurements } from './redfish.js';
export { ensureTokens, tokenPath, type Role, type RoleTokens } from './tokens.js';
export type { AnchorEntry, AnchorLogOptions } from './anchors.js';
export type { AnchorFaultHooks } from './anchoring.js';
export { NONCE_SIZE_MAX, NONCE_SIZE_MIN, DEFAULT_LIMITS, type BmcLimits } from './server.js';
export { certificateFingerprint, tlsPaths } from './tls.js';
