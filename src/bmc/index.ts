// Public surface of the BMC service.
export { startBmcService, type BmcService, type BmcServiceOptions } from './service.js';
export { BmcApiClient, BmcApiError, type KeyInfo } from './api-client.js';
export { BmcError, type BmcErrorCode } from './errors.js';
export { DEFAULT_ANCHOR_PCR, type TpmSource } from './bmc-tpm.js';
export { Paths, parseSignedMeasurements, encodeSignedMeasurements, type SignedMeasurements } from './redfish.js';
export { ensureTokens, tokenPath, type Role, type RoleTokens } from './tokens.js';
export type { AnchorEntry, AnchorLogOptions } from './anchors.js';
export type { AnchorFaultHooks } from './anchoring.js';
export { NONCE_SIZE_MAX } from './server.js';
