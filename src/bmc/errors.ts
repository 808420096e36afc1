// Errors of the BMC service. Each maps to an HTTP status when it reaches the API.
export type BmcErrorCode =
  | 'BMC_BAD_REQUEST'     // 400: a field is missing or malformed
  | 'BMC_UNAUTHENTICATED' // 401: no or unknown bearer token
  | 'BMC_FORBIDDEN'       // 403: the token's role may not do this
  | 'BMC_NOT_FOUND'       // 404
  | 'BMC_TPM'             // 502: the TPM refused or failed
  | 'BMC_STATE'           // 500: the state directory is unusable
  | 'BMC_CONFIG';         // bad command-line options

const STATUS: Record<BmcErrorCode, number> = {
  BMC_BAD_REQUEST: 400, BMC_UNAUTHENTICATED: 401, BMC_FORBIDDEN: 403, BMC_NOT_FOUND: 404, BMC_TPM: 502, BMC_STATE: 500, BMC_CONFIG: 2,
};

export class BmcError extends Error {
  readonly code: BmcErrorCode;
  /** For BMC_BAD_REQUEST: the JSON pointer of the offending field, e.g. "#/Anchor". */
  readonly field?: string;
  constructor(code: BmcErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.field = options?.field;
    this.name = 'BmcError';
  }
  get httpStatus(): number { return STATUS[this.code]; }
}
