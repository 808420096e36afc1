// TPM 2.0 commands (Part 3). Each command is a request builder plus a response shape
// (how many handles come back and how the parameters parse); the shapes are exported
// so the unmarshalling can be exercised on arbitrary bytes without a TPM.
import { randomBytes } from 'node:crypto';
import { Alg, Capability, Handle, HashInfo, Property, SessionType, StartupType, type CommandName } from './constants.js';
import { buildCommand, parseResponse, passwordSession, type AuthSession, type CommandRequest, type ParsedResponse } from './command.js';
import { TpmResponseError, TpmUsageError } from './errors.js';
import { TpmReader, TpmWriter } from './marshal.js';
import {
  readCapabilityData, readClockInfo, readNvPublic, readPcrSelections, readPublic, readSignature, readTicket,
  writeNvPublic, writePcrSelections, writePublic,
  type CapabilityData, type ClockInfo, type NvPublic, type PcrSelection, type Signature, type Ticket, type TpmPublic,
} from './structures.js';
import type { TpmTransport } from './transport.js';

// ---- results ----

/** A public area as the TPM returned it: parsed, and the exact bytes (names hash those). */
export interface PublicArea { public: TpmPublic; bytes: Buffer }
export interface CreatePrimaryResult { handle: number; outPublic: PublicArea; creationData: Buffer; creationHash: Buffer; creationTicket: Ticket; name: Buffer }
export interface CreateResult { outPrivate: Buffer; outPublic: PublicArea; creationData: Buffer; creationHash: Buffer; creationTicket: Ticket }
export interface LoadResult { handle: number; name: Buffer }
export interface ReadPublicResult { outPublic: PublicArea; name: Buffer; qualifiedName: Buffer }
export interface NvReadPublicResult { nvPublic: NvPublic; name: Buffer }
export interface PcrReadResult { updateCounter: number; selection: PcrSelection[]; digests: Buffer[] }
export interface QuoteResult {
  /** TPMS_ATTEST exactly as signed. */
  attest: Buffer;
  signature: Signature;
  /** TPMT_SIGNATURE as marshalled by the TPM. */
  signatureBytes: Buffer;
}
export interface StartAuthSessionResult { handle: number; nonceTpm: Buffer }
export interface PolicySecretResult { timeout: Buffer; ticket: Ticket }
export interface CapabilityResult { moreData: boolean; data: CapabilityData }
export interface TimeInfo { time: bigint; clockInfo: ClockInfo }

// ---- response shapes ----

export interface ResponseShape<T> { handles: number; parse(p: ParsedResponse): T }

function readPublicArea(r: TpmReader, field: string): PublicArea {
  const size = r.u16(`${field}.size`);
  if (size === 0) r.fail(`${field} is empty`);
  const inner = r.sub(size, field);
  const start = inner.offset;
  const pub = readPublic(inner);
  inner.end(field);
  return { public: pub, bytes: inner.since(start) };
}

function none(p: ParsedResponse): void { void p; }

export const Responses = {
  Startup: { handles: 0, parse: none },
  Shutdown: { handles: 0, parse: none },
  GetCapability: {
    handles: 0,
    parse: (p): CapabilityResult => {
      const more = p.parameters.u8('moreData');
      if (more > 1) p.parameters.fail(`moreData ${more} is not a TPMI_YES_NO`);
      return { moreData: more === 1, data: readCapabilityData(p.parameters) };
    },
  } satisfies ResponseShape<CapabilityResult>,
  GetRandom: { handles: 0, parse: (p): Buffer => p.parameters.tpm2b('randomBytes', 64) } satisfies ResponseShape<Buffer>,
  CreatePrimary: {
    handles: 1,
    parse: (p): CreatePrimaryResult => {
      const r = p.parameters;
      return {
        handle: p.handles[0] as number,
        outPublic: readPublicArea(r, 'outPublic'),
        creationData: r.tpm2b('creationData'),
        creationHash: r.tpm2b('creationHash', 64),
        creationTicket: readTicket(r, 'creationTicket'),
        name: r.tpm2b('name', 66),
      };
    },
  } satisfies ResponseShape<CreatePrimaryResult>,
  Create: {
    handles: 0,
    parse: (p): CreateResult => {
      const r = p.parameters;
      return {
        outPrivate: r.tpm2b('outPrivate'),
        outPublic: readPublicArea(r, 'outPublic'),
        creationData: r.tpm2b('creationData'),
        creationHash: r.tpm2b('creationHash', 64),
        creationTicket: readTicket(r, 'creationTicket'),
      };
    },
  } satisfies ResponseShape<CreateResult>,
  Load: { handles: 1, parse: (p): LoadResult => ({ handle: p.handles[0] as number, name: p.parameters.tpm2b('name', 66) }) } satisfies ResponseShape<LoadResult>,
  ReadPublic: {
    handles: 0,
    parse: (p): ReadPublicResult => ({ outPublic: readPublicArea(p.parameters, 'outPublic'), name: p.parameters.tpm2b('name', 66), qualifiedName: p.parameters.tpm2b('qualifiedName', 66) }),
  } satisfies ResponseShape<ReadPublicResult>,
  FlushContext: { handles: 0, parse: none },
  EvictControl: { handles: 0, parse: none },
  NV_ReadPublic: {
    handles: 0,
    parse: (p): NvReadPublicResult => ({ nvPublic: p.parameters.sized('nvPublic', readNvPublic) as NvPublic, name: p.parameters.tpm2b('nvName', 66) }),
  } satisfies ResponseShape<NvReadPublicResult>,
  NV_Read: { handles: 0, parse: (p): Buffer => p.parameters.tpm2b('data') } satisfies ResponseShape<Buffer>,
  NV_DefineSpace: { handles: 0, parse: none },
  NV_UndefineSpace: { handles: 0, parse: none },
  NV_Extend: { handles: 0, parse: none },
  NV_Write: { handles: 0, parse: none },
  PCR_Read: {
    handles: 0,
    parse: (p): PcrReadResult => {
      const r = p.parameters;
      const updateCounter = r.u32('pcrUpdateCounter');
      const selection = readPcrSelections(r, 'pcrSelectionOut');
      const n = r.count('pcrValues.count', 8, 2);
      const digests: Buffer[] = [];
      for (let i = 0; i < n; i++) digests.push(r.tpm2b(`pcrValues[${i}]`, 64));
      return { updateCounter, selection, digests };
    },
  } satisfies ResponseShape<PcrReadResult>,
  PCR_Extend: { handles: 0, parse: none },
  PCR_Reset: { handles: 0, parse: none },
  Quote: {
    handles: 0,
    parse: (p): QuoteResult => {
      const r = p.parameters;
      const attest = r.tpm2b('quoted');
      if (attest.length === 0) r.fail('quoted is empty');
      const start = r.offset;
      const signature = readSignature(r);
      const signatureBytes = r.since(start);
      return { attest, signature, signatureBytes };
    },
  } satisfies ResponseShape<QuoteResult>,
  StartAuthSession: {
    handles: 1,
    parse: (p): StartAuthSessionResult => ({ handle: p.handles[0] as number, nonceTpm: p.parameters.tpm2b('nonceTPM', 64) }),
  } satisfies ResponseShape<StartAuthSessionResult>,
  PolicySecret: {
    handles: 0,
    parse: (p): PolicySecretResult => ({ timeout: p.parameters.tpm2b('timeout', 64), ticket: readTicket(p.parameters, 'policyTicket') }),
  } satisfies ResponseShape<PolicySecretResult>,
  ActivateCredential: { handles: 0, parse: (p): Buffer => p.parameters.tpm2b('certInfo', 64) } satisfies ResponseShape<Buffer>,
  ReadClock: {
    handles: 0,
    parse: (p): TimeInfo => ({ time: p.parameters.u64('currentTime.time'), clockInfo: readClockInfo(p.parameters) }),
  } satisfies ResponseShape<TimeInfo>,
} satisfies Partial<Record<CommandName, ResponseShape<unknown>>>;

/** Parses a complete response for `command` with its shape; throws only TpmError subclasses. */
export function decodeResponse<T>(command: CommandName, buf: Buffer, shape: ResponseShape<T>, sessionCount: number): T {
  const p = parseResponse(command, buf, shape.handles, sessionCount);
  const value = shape.parse(p);
  p.parameters.end(`TPM2_${command} parameters`);
  return value;
}

// ---- the client ----

export interface KeyCreateOptions {
  /** The new object's authValue (userAuth). */
  auth?: Uint8Array;
  /** Extra data folded into the creation ticket. */
  outsideInfo?: Uint8Array;
}

/** One command and its response, as seen on the wire (for tracing and for tests). */
export interface TpmExchange { command: CommandName; sessionCount: number; request: Buffer; response: Buffer }
export interface TpmClientOptions { onExchange?: (exchange: TpmExchange) => void }

const RETRYABLE = new Set(['TPM_RC_RETRY', 'TPM_RC_YIELDED', 'TPM_RC_TESTING']);

function sensitiveCreate(w: TpmWriter, auth: Uint8Array = Buffer.alloc(0)): void {
  w.sized((s) => s.tpm2b(auth).tpm2b(Buffer.alloc(0)));
}

/**
 * A TPM 2.0 client over any transport. Methods map one-to-one to TPM commands, with
 * authorization passed as AuthSession values (the password session by default).
 */
export class TpmClient {
  private nvBufferMax: number | undefined;

  constructor(readonly transport: TpmTransport, private readonly options: TpmClientOptions = {}) {}

  private async call<T>(req: CommandRequest, shape: ResponseShape<T>): Promise<T> {
    const command = buildCommand(req);
    // A TPM answers RETRY, YIELDED or TESTING when it did not start (or finish) the
    // command and wants it sent again, e.g. swtpm right after key generation.
    for (let attempt = 0; ; attempt++) {
      const res = await this.transport.send(command);
      this.options.onExchange?.({ command: req.command, sessionCount: req.sessions?.length ?? 0, request: command, response: res });
      try {
        return decodeResponse(req.command, res, shape, req.sessions?.length ?? 0);
      } catch (e) {
        if (!(e instanceof TpmResponseError) || !RETRYABLE.has(e.detail.name) || attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** attempt)));
      }
    }
  }

  close(): Promise<void> { return this.transport.close(); }

  startup(type: 'clear' | 'state' = 'clear'): Promise<void> {
    const w = new TpmWriter().u16(type === 'clear' ? StartupType.CLEAR : StartupType.STATE);
    return this.call({ command: 'Startup', parameters: w.toBuffer() }, Responses.Startup);
  }

  /** Startup(CLEAR) that accepts an already started TPM (TPM_RC_INITIALIZE). */
  async ensureStarted(): Promise<void> {
    try { await this.startup('clear'); } catch (e) {
      if (!(e instanceof TpmResponseError && e.detail.name === 'TPM_RC_INITIALIZE')) throw e;
    }
  }

  shutdown(type: 'clear' | 'state' = 'clear'): Promise<void> {
    const w = new TpmWriter().u16(type === 'clear' ? StartupType.CLEAR : StartupType.STATE);
    return this.call({ command: 'Shutdown', parameters: w.toBuffer() }, Responses.Shutdown);
  }

  getCapability(capability: number, property: number, propertyCount: number): Promise<CapabilityResult> {
    const w = new TpmWriter().u32(capability).u32(property).u32(propertyCount);
    return this.call({ command: 'GetCapability', parameters: w.toBuffer() }, Responses.GetCapability);
  }

  /** One TPM_PT property, or undefined when the TPM does not report it. */
  async getProperty(property: number): Promise<number | undefined> {
    const { data } = await this.getCapability(Capability.TPM_PROPERTIES, property, 1);
    if (data.capability !== 'properties') return undefined;
    return data.properties.find((p) => p.property === property)?.value;
  }

  /** Every handle of one type (the first byte of `firstHandle`), following moreData. */
  async listHandles(firstHandle: number): Promise<number[]> {
    const out: number[] = [];
    let next = firstHandle >>> 0;
    const type = next >>> 24;
    for (let round = 0; round < 64; round++) {
      const { moreData, data } = await this.getCapability(Capability.HANDLES, next, 64);
      if (data.capability !== 'handles') break;
      const mine = data.handles.filter((h) => h >>> 24 === type);
      out.push(...mine);
      const last = mine[mine.length - 1];
      if (!moreData || last === undefined) break;
      next = last + 1;
    }
    return out;
  }

  /** `count` random bytes from the TPM's RNG (asked for in pieces the TPM accepts). */
  async getRandom(count: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < count) {
      const ask = Math.min(32, count - have);
      const b = await this.call({ command: 'GetRandom', parameters: new TpmWriter().u16(ask).toBuffer() }, Responses.GetRandom);
      if (b.length === 0) throw new TpmUsageError('TPM2_GetRandom returned no bytes');
      parts.push(b); have += b.length;
    }
    return Buffer.concat(parts).subarray(0, count);
  }

  createPrimary(hierarchy: number, template: TpmPublic, options: KeyCreateOptions & { hierarchyAuth?: AuthSession } = {}): Promise<CreatePrimaryResult> {
    const w = new TpmWriter();
    sensitiveCreate(w, options.auth);
    w.sized((p) => writePublic(p, template)).tpm2b(options.outsideInfo ?? Buffer.alloc(0));
    writePcrSelections(w, []);
    return this.call({ command: 'CreatePrimary', handles: [hierarchy], sessions: [options.hierarchyAuth ?? passwordSession()], parameters: w.toBuffer() }, Responses.CreatePrimary);
  }

  create(parent: number, parentAuth: AuthSession, template: TpmPublic, options: KeyCreateOptions = {}): Promise<CreateResult> {
    const w = new TpmWriter();
    sensitiveCreate(w, options.auth);
    w.sized((p) => writePublic(p, template)).tpm2b(options.outsideInfo ?? Buffer.alloc(0));
    writePcrSelections(w, []);
    return this.call({ command: 'Create', handles: [parent], sessions: [parentAuth], parameters: w.toBuffer() }, Responses.Create);
  }

  /** Loads an object made by Create; `publicBytes` is its TPMT_PUBLIC as Create returned it. */
  load(parent: number, parentAuth: AuthSession, outPrivate: Buffer, publicBytes: Buffer): Promise<LoadResult> {
    const w = new TpmWriter().tpm2b(outPrivate).tpm2b(publicBytes);
    return this.call({ command: 'Load', handles: [parent], sessions: [parentAuth], parameters: w.toBuffer() }, Responses.Load);
  }

  readPublic(handle: number): Promise<ReadPublicResult> {
    return this.call({ command: 'ReadPublic', handles: [handle] }, Responses.ReadPublic);
  }

  flushContext(handle: number): Promise<void> {
    // The handle to flush is a parameter, not a handle-area entry (Part 3, 28.4).
    return this.call({ command: 'FlushContext', parameters: new TpmWriter().u32(handle).toBuffer() }, Responses.FlushContext);
  }

  /** Makes a loaded object persistent at `persistentHandle`, or (given a persistent handle for both) evicts it. */
  evictControl(objectHandle: number, persistentHandle: number, auth: AuthSession = passwordSession(), hierarchy: number = Handle.OWNER): Promise<void> {
    return this.call({ command: 'EvictControl', handles: [hierarchy, objectHandle], sessions: [auth], parameters: new TpmWriter().u32(persistentHandle).toBuffer() }, Responses.EvictControl);
  }

  nvReadPublic(nvIndex: number): Promise<NvReadPublicResult> {
    return this.call({ command: 'NV_ReadPublic', handles: [nvIndex] }, Responses.NV_ReadPublic);
  }

  nvDefineSpace(nvPublic: NvPublic, indexAuth: Uint8Array = Buffer.alloc(0), auth: AuthSession = passwordSession(), hierarchy: number = Handle.OWNER): Promise<void> {
    const w = new TpmWriter().tpm2b(indexAuth).sized((p) => writeNvPublic(p, nvPublic));
    return this.call({ command: 'NV_DefineSpace', handles: [hierarchy], sessions: [auth], parameters: w.toBuffer() }, Responses.NV_DefineSpace);
  }

  nvUndefineSpace(nvIndex: number, auth: AuthSession = passwordSession(), hierarchy: number = Handle.OWNER): Promise<void> {
    return this.call({ command: 'NV_UndefineSpace', handles: [hierarchy, nvIndex], sessions: [auth] }, Responses.NV_UndefineSpace);
  }

  /** NV_Extend with the index's own authorization (TPMA_NV_AUTHWRITE) unless `authHandle` says otherwise. */
  nvExtend(nvIndex: number, data: Uint8Array, auth: AuthSession = passwordSession(), authHandle: number = nvIndex): Promise<void> {
    return this.call({ command: 'NV_Extend', handles: [authHandle, nvIndex], sessions: [auth], parameters: new TpmWriter().tpm2b(data).toBuffer() }, Responses.NV_Extend);
  }

  /**
   * Writes `data` at `offset` (0 by default) of an ordinary index, in pieces no larger
   * than the TPM's TPM_PT_NV_BUFFER_MAX: a TPM refuses a larger TPM2B_MAX_NV_BUFFER, and
   * an EK certificate is usually larger than one piece. Authorization is the index's own
   * (TPMA_NV_AUTHWRITE) unless `authHandle` names a hierarchy (e.g. TPM_RH_PLATFORM
   * for a TPMA_NV_PPWRITE index).
   */
  async nvWrite(nvIndex: number, data: Uint8Array, options: { offset?: number; auth?: AuthSession; authHandle?: number } = {}): Promise<void> {
    this.nvBufferMax ??= (await this.getProperty(Property.NV_BUFFER_MAX)) ?? 512;
    const start = options.offset ?? 0;
    if (!Number.isInteger(start) || start < 0 || start + data.length > 0xffff) throw new TpmUsageError(`TPM2_NV_Write offset ${start} + ${data.length} bytes does not fit a UINT16 offset`);
    let done = 0;
    do {
      const piece = data.subarray(done, Math.min(data.length, done + this.nvBufferMax));
      await this.call({
        command: 'NV_Write', handles: [options.authHandle ?? nvIndex, nvIndex], sessions: [options.auth ?? passwordSession()],
        parameters: new TpmWriter().tpm2b(piece).u16(start + done).toBuffer(),
      }, Responses.NV_Write);
      done += piece.length;
    } while (done < data.length);
  }

  /**
   * Reads `size` bytes (the whole index by default) from `offset`, in pieces no larger
   * than the TPM's TPM_PT_NV_BUFFER_MAX.
   */
  async nvRead(nvIndex: number, options: { size?: number; offset?: number; auth?: AuthSession; authHandle?: number } = {}): Promise<Buffer> {
    const size = options.size ?? (await this.nvReadPublic(nvIndex)).nvPublic.dataSize;
    this.nvBufferMax ??= (await this.getProperty(Property.NV_BUFFER_MAX)) ?? 512;
    const parts: Buffer[] = [];
    let offset = options.offset ?? 0;
    const end = offset + size;
    while (offset < end) {
      const n = Math.min(this.nvBufferMax, end - offset);
      const chunk = await this.call({
        command: 'NV_Read', handles: [options.authHandle ?? nvIndex, nvIndex], sessions: [options.auth ?? passwordSession()],
        parameters: new TpmWriter().u16(n).u16(offset).toBuffer(),
      }, Responses.NV_Read);
      if (chunk.length !== n) throw new TpmUsageError(`TPM2_NV_Read returned ${chunk.length} bytes, asked for ${n}`);
      parts.push(chunk); offset += n;
    }
    return Buffer.concat(parts);
  }

  /** One TPM2_PCR_Read exchange (a TPM answers at most 8 digests per call). */
  pcrReadOnce(selection: readonly PcrSelection[]): Promise<PcrReadResult> {
    const w = new TpmWriter(); writePcrSelections(w, selection);
    return this.call({ command: 'PCR_Read', parameters: w.toBuffer() }, Responses.PCR_Read);
  }

  /** Values of `pcrs` in the bank of `hashAlg`, asking again until all are read. */
  async pcrRead(hashAlg: number, pcrs: readonly number[]): Promise<Map<number, Buffer>> {
    const values = new Map<number, Buffer>();
    let wanted = [...new Set(pcrs)].sort((a, b) => a - b);
    while (wanted.length > 0) {
      const res = await this.pcrReadOnce([{ hashAlg, pcrs: wanted }]);
      const got = res.selection.find((s) => s.hashAlg === hashAlg)?.pcrs ?? [];
      if (got.length === 0 || got.length !== res.digests.length) {
        throw new TpmUsageError(`TPM2_PCR_Read returned no values for PCRs ${wanted.join(',')} of bank 0x${hashAlg.toString(16)}: is the bank active?`);
      }
      got.forEach((pcr, i) => values.set(pcr, res.digests[i] as Buffer));
      wanted = wanted.filter((p) => !values.has(p));
    }
    return values;
  }

  /** Extends `pcr` in each given bank; digests must be the bank's hash size. */
  async pcrExtend(pcr: number, digests: readonly { hashAlg: number; digest: Uint8Array }[], auth: AuthSession = passwordSession()): Promise<void> {
    const w = new TpmWriter().u32(digests.length);
    for (const d of digests) {
      const size = HashInfo[d.hashAlg]?.size;
      if (size === undefined || d.digest.length !== size) throw new TpmUsageError(`PCR_Extend digest for algorithm 0x${d.hashAlg.toString(16)} must be ${size ?? '?'} bytes, got ${d.digest.length}`);
      w.u16(d.hashAlg).bytes(d.digest);
    }
    await this.call({ command: 'PCR_Extend', handles: [pcr], sessions: [auth], parameters: w.toBuffer() }, Responses.PCR_Extend);
  }

  pcrReset(pcr: number, auth: AuthSession = passwordSession()): Promise<void> {
    return this.call({ command: 'PCR_Reset', handles: [pcr], sessions: [auth] }, Responses.PCR_Reset);
  }

  /** TPM2_Quote with the key's own scheme (inScheme TPM_ALG_NULL) unless one is given. */
  quote(signHandle: number, qualifyingData: Uint8Array, selection: readonly PcrSelection[], options: { auth?: AuthSession; scheme?: { scheme: number; hashAlg: number } } = {}): Promise<QuoteResult> {
    const w = new TpmWriter().tpm2b(qualifyingData);
    const scheme = options.scheme ?? { scheme: Alg.NULL, hashAlg: 0 };
    w.u16(scheme.scheme);
    if (scheme.scheme !== Alg.NULL) w.u16(scheme.hashAlg);
    writePcrSelections(w, selection);
    return this.call({ command: 'Quote', handles: [signHandle], sessions: [options.auth ?? passwordSession()], parameters: w.toBuffer() }, Responses.Quote);
  }

  /** An unbound, unsalted session without parameter encryption (enough for policies). */
  startAuthSession(sessionType: number, hashAlg: number = Alg.SHA256): Promise<StartAuthSessionResult> {
    const nonceCaller = randomBytes(HashInfo[hashAlg]?.size ?? 32);
    const w = new TpmWriter().tpm2b(nonceCaller).tpm2b(Buffer.alloc(0)).u8(sessionType).u16(Alg.NULL).u16(hashAlg);
    return this.call({ command: 'StartAuthSession', handles: [Handle.NULL, Handle.NULL], parameters: w.toBuffer() }, Responses.StartAuthSession);
  }

  policySecret(authHandle: number, policySession: number, options: { auth?: AuthSession; nonceTpm?: Uint8Array; cpHash?: Uint8Array; policyRef?: Uint8Array; expiration?: number } = {}): Promise<PolicySecretResult> {
    const w = new TpmWriter()
      .tpm2b(options.nonceTpm ?? Buffer.alloc(0)).tpm2b(options.cpHash ?? Buffer.alloc(0)).tpm2b(options.policyRef ?? Buffer.alloc(0))
      .i32(options.expiration ?? 0);
    return this.call({ command: 'PolicySecret', handles: [authHandle, policySession], sessions: [options.auth ?? passwordSession()], parameters: w.toBuffer() }, Responses.PolicySecret);
  }

  /**
   * Runs `use` with a one-shot policy session satisfied by PolicySecret(authHandle) —
   * with TPM_RH_ENDORSEMENT that is the policy of the TCG EK templates. The session
   * ends with the command that uses it; it is flushed here if that command fails.
   */
  async withPolicySecret<T>(authHandle: number, use: (session: AuthSession) => Promise<T>, auth: AuthSession = passwordSession()): Promise<T> {
    const s = await this.startAuthSession(SessionType.POLICY, Alg.SHA256);
    try {
      await this.policySecret(authHandle, s.handle, { auth });
      return await use({ handle: s.handle, nonce: randomBytes(32), attributes: 0, hmac: Buffer.alloc(0) });
    } catch (e) {
      await this.flushContext(s.handle).catch(() => undefined);
      throw e;
    }
  }

  /**
   * TPM2_ActivateCredential: `credentialBlob` is the content of a TPM2B_ID_OBJECT and
   * `secret` the content of a TPM2B_ENCRYPTED_SECRET, both as MakeCredential makes them.
   */
  activateCredential(activateHandle: number, keyHandle: number, credentialBlob: Uint8Array, secret: Uint8Array, auth: { activate: AuthSession; key: AuthSession }): Promise<Buffer> {
    const w = new TpmWriter().tpm2b(credentialBlob).tpm2b(secret);
    return this.call({ command: 'ActivateCredential', handles: [activateHandle, keyHandle], sessions: [auth.activate, auth.key], parameters: w.toBuffer() }, Responses.ActivateCredential);
  }

  readClock(): Promise<TimeInfo> {
    return this.call({ command: 'ReadClock' }, Responses.ReadClock);
  }
}
