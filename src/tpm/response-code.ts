// TPM_RC decoding (TPM 2.0 Part 2, 6.6). A response code is either format one (bit 7
// set: an error about a specific handle, session or parameter) or format zero (a TPM
// 2.0 error or warning, a vendor code, or a TPM 1.2 code).

export interface DecodedResponseCode {
  rc: number;
  format: 'success' | 'format-one' | 'format-zero' | 'vendor' | 'tpm1.2';
  /** Name from the specification, e.g. "TPM_RC_AUTH_FAIL" or "TPM_RC_RETRY". */
  name: string;
  warning: boolean;
  /** For format-one codes: which handle, session or parameter (1-based) the error is about. */
  subject?: { kind: 'handle' | 'session' | 'parameter'; number: number };
  /** One line for people: name, what it means and what it is about. */
  text: string;
}

const RC_VER1 = 0x100;
const RC_FMT1 = 0x080;
const RC_WARN = 0x900;

const FORMAT_ONE: Record<number, [string, string]> = {
  0x01: ['ASYMMETRIC', 'asymmetric algorithm not supported or not correct'],
  0x02: ['ATTRIBUTES', 'inconsistent attributes'],
  0x03: ['HASH', 'hash algorithm not supported or not appropriate'],
  0x04: ['VALUE', 'value is out of range or not correct for the context'],
  0x05: ['HIERARCHY', 'hierarchy is not enabled or not correct for the use'],
  0x07: ['KEY_SIZE', 'key size is not supported'],
  0x08: ['MGF', 'mask generation function not supported'],
  0x09: ['MODE', 'mode of operation not supported'],
  0x0a: ['TYPE', 'the type of the value is not appropriate for the use'],
  0x0b: ['HANDLE', 'the handle is not correct for the use'],
  0x0c: ['KDF', 'unsupported key derivation function or function not appropriate for use'],
  0x0d: ['RANGE', 'value was out of allowed range'],
  0x0e: ['AUTH_FAIL', 'the authorization HMAC check failed and DA counter incremented'],
  0x0f: ['NONCE', 'invalid nonce size or nonce value mismatch'],
  0x10: ['PP', 'authorization requires assertion of PP'],
  0x12: ['SCHEME', 'unsupported or incompatible scheme'],
  0x15: ['SIZE', 'structure is the wrong size'],
  0x16: ['SYMMETRIC', 'unsupported symmetric algorithm or key size, or not appropriate for instance'],
  0x17: ['TAG', 'incorrect structure tag'],
  0x18: ['SELECTOR', 'union selector is incorrect'],
  0x1a: ['INSUFFICIENT', 'the TPM was unable to unmarshal a value because there were not enough octets in the input buffer'],
  0x1b: ['SIGNATURE', 'the signature is not valid'],
  0x1c: ['KEY', 'key fields are not compatible with the selected use'],
  0x1d: ['POLICY_FAIL', 'a policy check failed'],
  0x1f: ['INTEGRITY', 'integrity check failed'],
  0x20: ['TICKET', 'invalid ticket'],
  0x21: ['RESERVED_BITS', 'reserved bits not set to zero as required'],
  0x22: ['BAD_AUTH', 'authorization failure without DA implications'],
  0x23: ['EXPIRED', 'the policy has expired'],
  0x24: ['POLICY_CC', 'the commandCode in the policy is not the commandCode of the command or the command code in a policy command references a command that is not implemented'],
  0x25: ['BINDING', 'public and sensitive portions of an object are not cryptographically bound'],
  0x26: ['CURVE', 'curve not supported'],
  0x27: ['ECC_POINT', 'point is not on the required curve'],
};

const VER1: Record<number, [string, string]> = {
  0x000: ['INITIALIZE', 'TPM not initialized by TPM2_Startup or already initialized'],
  0x001: ['FAILURE', 'commands not being accepted because of a TPM failure'],
  0x003: ['SEQUENCE', 'improper use of a sequence handle'],
  0x00b: ['PRIVATE', 'not currently used'],
  0x019: ['HMAC', 'not currently used'],
  0x020: ['DISABLED', 'the command is disabled'],
  0x021: ['EXCLUSIVE', 'command failed because audit sequence required exclusivity'],
  0x024: ['AUTH_TYPE', 'authorization handle is not correct for command'],
  0x025: ['AUTH_MISSING', 'command requires an authorization session for handle and it is not present'],
  0x026: ['POLICY', 'policy failure in math operation or an invalid authPolicy value'],
  0x027: ['PCR', 'PCR check fail'],
  0x028: ['PCR_CHANGED', 'PCR have changed since checked'],
  0x02d: ['UPGRADE', 'the TPM is in field upgrade mode'],
  0x02e: ['TOO_MANY_CONTEXTS', 'context ID counter is at maximum'],
  0x02f: ['AUTH_UNAVAILABLE', 'authValue or authPolicy is not available for selected entity'],
  0x030: ['REBOOT', 'a _TPM_Init and Startup(CLEAR) is required before the TPM can resume operation'],
  0x031: ['UNBALANCED', 'the protection algorithms (hash and symmetric) are not reasonably balanced'],
  0x042: ['COMMAND_SIZE', 'command commandSize value is inconsistent with contents of the command buffer'],
  0x043: ['COMMAND_CODE', 'command code not supported'],
  0x044: ['AUTHSIZE', 'the value of authorizationSize is out of range or the number of octets in the authorization area is greater than required'],
  0x045: ['AUTH_CONTEXT', 'use of an authorization session with a context command or another command that cannot have an authorization session'],
  0x046: ['NV_RANGE', 'NV offset+size is out of range'],
  0x047: ['NV_SIZE', 'requested allocation size is larger than allowed'],
  0x048: ['NV_LOCKED', 'NV access locked'],
  0x049: ['NV_AUTHORIZATION', 'NV access authorization fails in command actions'],
  0x04a: ['NV_UNINITIALIZED', 'an NV Index is used before being initialized or the state saved by TPM2_Shutdown(STATE) could not be restored'],
  0x04b: ['NV_SPACE', 'insufficient space for NV allocation'],
  0x04c: ['NV_DEFINED', 'NV Index or persistent object already defined'],
  0x050: ['BAD_CONTEXT', 'context in TPM2_ContextLoad is not valid'],
  0x051: ['CPHASH', 'cpHash value already set or not correct for use'],
  0x052: ['PARENT', 'handle for parent is not a valid parent'],
  0x053: ['NEEDS_TEST', 'some function needs testing'],
  0x054: ['NO_RESULT', 'an internal function cannot process a request due to an unspecified problem'],
  0x055: ['SENSITIVE', 'the sensitive area did not unmarshal correctly after decryption'],
};

const WARN: Record<number, [string, string]> = {
  0x001: ['CONTEXT_GAP', 'gap for context ID is too large'],
  0x002: ['OBJECT_MEMORY', 'out of memory for object contexts'],
  0x003: ['SESSION_MEMORY', 'out of memory for session contexts'],
  0x004: ['MEMORY', 'out of shared object/session memory or need space for internal operations'],
  0x005: ['SESSION_HANDLES', 'out of session handles; a session must be flushed before a new session may be created'],
  0x006: ['OBJECT_HANDLES', 'out of object handles; the handle space for objects is depleted and a reboot is required'],
  0x007: ['LOCALITY', 'bad locality'],
  0x008: ['YIELDED', 'the TPM has suspended operation on the command; forward progress was made and the command may be retried'],
  0x009: ['CANCELED', 'the command was canceled'],
  0x00a: ['TESTING', 'TPM is performing self-tests'],
  0x020: ['NV_RATE', 'the TPM is rate-limiting accesses to prevent wearout of NV'],
  0x021: ['LOCKOUT', 'authorizations for objects subject to DA protection are not allowed at this time because the TPM is in DA lockout mode'],
  0x022: ['RETRY', 'the TPM was not able to start the command'],
  0x023: ['NV_UNAVAILABLE', 'the command may require writing of NV and NV is not current accessible'],
};
for (let i = 0; i <= 6; i++) {
  WARN[0x010 + i] = [`REFERENCE_H${i}`, `the ${ordinal(i + 1)} handle in the handle area references a transient object or session that is not loaded`];
  WARN[0x018 + i] = [`REFERENCE_S${i}`, `the ${ordinal(i + 1)} authorization session handle references a session that is not loaded`];
}

function ordinal(n: number): string {
  return ['zeroth', '1st', '2nd', '3rd'][n] ?? `${n}th`;
}

function hex(rc: number): string { return `0x${rc.toString(16).padStart(3, '0')}`; }

export function decodeResponseCode(rcIn: number): DecodedResponseCode {
  const rc = rcIn >>> 0;
  if (rc === 0) return { rc, format: 'success', name: 'TPM_RC_SUCCESS', warning: false, text: 'TPM_RC_SUCCESS' };
  if (rc & RC_FMT1) {
    const number = rc & 0x3f;
    const [base, meaning] = FORMAT_ONE[number] ?? [`UNKNOWN_FMT1_${hex(number)}`, 'error number not in the specification'];
    const name = `TPM_RC_${base}`;
    let subject: DecodedResponseCode['subject'];
    if (rc & 0x40) subject = { kind: 'parameter', number: (rc >> 8) & 0xf };
    else if (rc & 0x800) subject = { kind: 'session', number: (rc >> 8) & 0x7 };
    else if ((rc >> 8) & 0x7) subject = { kind: 'handle', number: (rc >> 8) & 0x7 };
    const about = subject ? ` (${subject.kind} ${subject.number})` : '';
    return { rc, format: 'format-one', name, warning: false, subject, text: `${name}${about}: ${meaning} [rc ${hex(rc)}]` };
  }
  if (!(rc & RC_VER1)) {
    return { rc, format: 'tpm1.2', name: `TPM_1.2_RC_${hex(rc)}`, warning: false, text: `TPM 1.2 response code ${hex(rc)}: is this a TPM 2.0 device? [rc ${hex(rc)}]` };
  }
  if (rc & 0x400) {
    return { rc, format: 'vendor', name: `TPM_RC_VENDOR_${hex(rc & 0x7f)}`, warning: !!(rc & 0x800), text: `vendor-defined response code ${hex(rc & 0x7f)} [rc ${hex(rc)}]` };
  }
  const warning = (rc & RC_WARN) === RC_WARN;
  const table = warning ? WARN : VER1;
  const [base, meaning] = table[rc & 0x7f] ?? [`UNKNOWN_${hex(rc & 0x7f)}`, 'code not in the specification'];
  const name = `TPM_RC_${base}`;
  return { rc, format: 'format-zero', name, warning, text: `${name}${warning ? ' (warning)' : ''}: ${meaning} [rc ${hex(rc)}]` };
}
