// Every failure of the TPM client is one of these classes, each with a stable `code`
// a caller can switch on and a message that says what went wrong and where.
import { decodeResponseCode, type DecodedResponseCode } from './response-code.js';

export type TpmErrorCode =
  | 'TPM_RESPONSE'      // the TPM answered with a non-zero response code
  | 'TPM_FORMAT'        // bytes that do not parse as the structure they should be
  | 'TPM_TRANSPORT'     // the connection to the TPM failed, closed or timed out
  | 'TPM_CONTROL'       // swtpm's control channel refused a command
  | 'TPM_VERIFY'        // a quote, signature or certificate did not check out
  | 'TPM_USAGE'         // the caller passed something the client cannot send
  | 'TPM_PROCESS';      // swtpm or swtpm_setup could not be started

export class TpmError extends Error {
  readonly code: TpmErrorCode;
  constructor(code: TpmErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The TPM executed the command and refused it; `rc` is decoded into `detail`. */
export class TpmResponseError extends TpmError {
  readonly rc: number;
  readonly command: string;
  readonly detail: DecodedResponseCode;
  constructor(command: string, rc: number) {
    const detail = decodeResponseCode(rc);
    super('TPM_RESPONSE', `TPM2_${command} failed: ${detail.text}`);
    this.rc = rc;
    this.command = command;
    this.detail = detail;
  }
}

/** A buffer does not hold a valid encoding of the structure being read. */
export class TpmFormatError extends TpmError {
  readonly structure: string;
  readonly offset: number;
  constructor(structure: string, offset: number, problem: string) {
    super('TPM_FORMAT', `malformed ${structure} at byte ${offset}: ${problem}`);
    this.structure = structure;
    this.offset = offset;
  }
}

export class TpmTransportError extends TpmError {
  constructor(message: string, options?: { cause?: unknown }) { super('TPM_TRANSPORT', message, options); }
}

export class TpmControlError extends TpmError {
  readonly result: number;
  constructor(command: string, result: number) {
    super('TPM_CONTROL', `swtpm control command ${command} failed with result 0x${result.toString(16)}`);
    this.result = result;
  }
}

export class TpmVerifyError extends TpmError {
  constructor(message: string) { super('TPM_VERIFY', message); }
}

export class TpmUsageError extends TpmError {
  constructor(message: string) { super('TPM_USAGE', message); }
}

export class TpmProcessError extends TpmError {
  constructor(message: string, options?: { cause?: unknown }) { super('TPM_PROCESS', message, options); }
}
