// Command and response framing (TPM 2.0 Part 1, 18; Part 3, section "Command/Response
// Structure"): header, handle area, authorization area, parameters. Pure functions, so
// the same parsers run on bytes from a TPM and on bytes a fuzzer made up.
import { CommandCode, Handle, Tag, type CommandName } from './constants.js';
import { TpmFormatError, TpmResponseError } from './errors.js';
import { TpmReader, TpmWriter } from './marshal.js';

/** One entry of the authorization area (TPMS_AUTH_COMMAND). */
export interface AuthSession {
  handle: number;
  nonce: Buffer;
  attributes: number;
  /** The HMAC, or for the password session the password itself. */
  hmac: Buffer;
}

/** The password session (TPM_RS_PW) carrying `password` (empty by default). */
export function passwordSession(password: Uint8Array = Buffer.alloc(0)): AuthSession {
  return { handle: Handle.PASSWORD_SESSION, nonce: Buffer.alloc(0), attributes: 0, hmac: Buffer.from(password) };
}

export interface CommandRequest {
  command: CommandName;
  handles?: number[];
  /** One session per handle that needs authorization, in handle order. */
  sessions?: AuthSession[];
  parameters?: Buffer;
}

export function buildCommand(req: CommandRequest): Buffer {
  const sessions = req.sessions ?? [];
  const w = new TpmWriter();
  const body = new TpmWriter();
  for (const h of req.handles ?? []) body.u32(h);
  if (sessions.length > 0) {
    const auth = new TpmWriter();
    for (const s of sessions) auth.u32(s.handle).tpm2b(s.nonce).u8(s.attributes).tpm2b(s.hmac);
    body.u32(auth.size).bytes(auth.toBuffer());
  }
  if (req.parameters) body.bytes(req.parameters);
  w.u16(sessions.length > 0 ? Tag.SESSIONS : Tag.NO_SESSIONS).u32(10 + body.size).u32(CommandCode[req.command]).bytes(body.toBuffer());
  return w.toBuffer();
}

/** TPMS_AUTH_RESPONSE. */
export interface AuthResponse { nonce: Buffer; attributes: number; hmac: Buffer }

export interface ParsedResponse {
  handles: number[];
  /** A reader over exactly the response parameters; the caller must consume them all. */
  parameters: TpmReader;
  sessions: AuthResponse[];
}

/**
 * Checks the header of a response and splits it into its areas. A non-zero response
 * code becomes a TpmResponseError; anything that does not add up is a TpmFormatError.
 * `handleCount` is how many handles this command returns, `sessionCount` how many
 * sessions the command was sent with.
 */
export function parseResponse(command: CommandName, buf: Buffer, handleCount: number, sessionCount: number): ParsedResponse {
  const structure = `TPM2_${command} response`;
  const r = new TpmReader(buf, structure);
  const tag = r.u16('tag');
  const size = r.u32('responseSize');
  if (size !== buf.length) throw new TpmFormatError(structure, 2, `responseSize ${size} but ${buf.length} bytes were received`);
  const rc = r.u32('responseCode');
  if (rc !== 0) {
    if (tag !== Tag.NO_SESSIONS && tag !== Tag.RSP_COMMAND) r.fail(`error response has tag 0x${tag.toString(16)}, expected TPM_ST_NO_SESSIONS`);
    throw new TpmResponseError(command, rc);
  }
  const expectedTag = sessionCount > 0 ? Tag.SESSIONS : Tag.NO_SESSIONS;
  if (tag !== expectedTag) r.fail(`tag 0x${tag.toString(16)}, expected 0x${expectedTag.toString(16)} for a command sent with ${sessionCount} session(s)`);
  const handles: number[] = [];
  for (let i = 0; i < handleCount; i++) handles.push(r.u32(`handle[${i}]`));
  if (sessionCount === 0) return { handles, parameters: r.sub(r.remaining, 'parameters'), sessions: [] };
  const parameterSize = r.u32('parameterSize');
  const parameters = r.sub(parameterSize, 'parameters');
  const sessions: AuthResponse[] = [];
  for (let i = 0; i < sessionCount; i++) {
    sessions.push({ nonce: r.tpm2b(`session[${i}].nonce`, 64), attributes: r.u8(`session[${i}].attributes`), hmac: r.tpm2b(`session[${i}].hmac`, 64) });
  }
  r.end();
  return { handles, parameters, sessions };
}
