// Numeric constants of TPM 2.0 Library Part 2 (Structures). Only what this client
// speaks is listed; values are the specification's, names follow it without the prefix.

/** TPM_ST: structure tags. */
export const Tag = {
  RSP_COMMAND: 0x00c4,
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  ATTEST_NV_DIGEST: 0x801c,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  AUTH_SECRET: 0x8023,
  HASHCHECK: 0x8024,
  AUTH_SIGNED: 0x8025,
} as const;

/** TPM_CC: command codes. */
export const CommandCode = {
  NV_UndefineSpace: 0x0122,
  EvictControl: 0x0120,
  NV_DefineSpace: 0x012a,
  NV_Extend: 0x0136,
  NV_Write: 0x0137,
  CreatePrimary: 0x0131,
  PCR_Reset: 0x013d,
  Startup: 0x0144,
  Shutdown: 0x0145,
  ActivateCredential: 0x0147,
  NV_Read: 0x014e,
  PolicySecret: 0x0151,
  Create: 0x0153,
  Load: 0x0157,
  Quote: 0x0158,
  FlushContext: 0x0165,
  NV_ReadPublic: 0x0169,
  ReadPublic: 0x0173,
  StartAuthSession: 0x0176,
  GetCapability: 0x017a,
  GetRandom: 0x017b,
  PCR_Read: 0x017e,
  ReadClock: 0x0181,
  PCR_Extend: 0x0182,
} as const;
export type CommandName = keyof typeof CommandCode;

/** TPM_ALG_ID. */
export const Alg = {
  ERROR: 0x0000,
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

/** Hash algorithms this client can compute in software, with their digest sizes. */
export const HashInfo: Readonly<Record<number, { name: 'sha1' | 'sha256' | 'sha384' | 'sha512'; size: number }>> = {
  [Alg.SHA1]: { name: 'sha1', size: 20 },
  [Alg.SHA256]: { name: 'sha256', size: 32 },
  [Alg.SHA384]: { name: 'sha384', size: 48 },
  [Alg.SHA512]: { name: 'sha512', size: 64 },
};

/** TPM_ECC_CURVE. */
export const EccCurve = {
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
} as const;

/** Permanent and session handles (TPM_RH, TPM_RS). */
export const Handle = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PASSWORD_SESSION: 0x40000009, // TPM_RS_PW
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** The first byte of a handle says what kind of entity it names (TPM_HT). */
export const HandleType = {
  PCR: 0x00,
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
} as const;

export const StartupType = { CLEAR: 0x0000, STATE: 0x0001 } as const;

/** TPM_SE: session types. */
export const SessionType = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** TPMA_SESSION bits. */
export const SessionAttr = { continueSession: 0x01, auditExclusive: 0x02, auditReset: 0x04, decrypt: 0x20, encrypt: 0x40, audit: 0x80 } as const;

/** TPM_CAP. */
export const Capability = {
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  COMMANDS: 0x00000002,
  PP_COMMANDS: 0x00000003,
  AUDIT_COMMANDS: 0x00000004,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
  PCR_PROPERTIES: 0x00000007,
  ECC_CURVES: 0x00000008,
} as const;

/** TPM_PT: fixed properties (PT_FIXED = 0x100) and variable ones (PT_VAR = 0x200). */
export const Property = {
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  PCR_COUNT: 0x112,
  NV_INDEX_MAX: 0x117,
  MAX_DIGEST: 0x120,
  NV_BUFFER_MAX: 0x12c,
  PERMANENT: 0x200,
  STARTUP_CLEAR: 0x201,
} as const;

/** TPMA_OBJECT bits. */
export const ObjectAttr = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** TPMA_NV bits, and the TPM_NT index types held in bits 4..7. */
export const NvAttr = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  POLICYWRITE: 1 << 3,
  POLICY_DELETE: 1 << 10,
  WRITELOCKED: 1 << 11,
  WRITEALL: 1 << 12,
  WRITEDEFINE: 1 << 13,
  WRITE_STCLEAR: 1 << 14,
  GLOBALLOCK: 1 << 15,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  ORDERLY: 1 << 26,
  CLEAR_STCLEAR: 1 << 27,
  READLOCKED: 1 << 28,
  WRITTEN: 1 << 29,
  PLATFORMCREATE: 1 << 30,
  READ_STCLEAR: 2 ** 31,
} as const;
export const NvType = { ORDINARY: 0x0, COUNTER: 0x1, BITS: 0x2, EXTEND: 0x4, PIN_FAIL: 0x8, PIN_PASS: 0x9 } as const;
export function nvTypeAttribute(type: number): number { return (type & 0xf) << 4; }

/** TPM_GENERATED_VALUE: the magic that starts every TPMS_ATTEST the TPM signs. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** The largest response (or command) this client accepts; TPMs stay far below. */
export const MAX_RESPONSE_SIZE = 64 * 1024;
