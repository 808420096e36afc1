// The BMC's HTTP API (Redfish-style). Routes declare which roles may call them; the
// auth hook answers 401 for a missing or unknown token and 403 for a known token of the
// wrong role before any handler runs.
import http from 'node:http';
import https from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  Alg, HashInfo, TpmError, objectName, publicKeyPem, unmarshalPcrSelections, unmarshalSignatureScheme,
  type PcrSelection, type SignatureScheme,
} from '../tpm/index.js';
import type { AnchorLog } from './anchors.js';
import { anchorDigest, settlePendingAnchor, type AnchorFaultHooks } from './anchoring.js';
import type { BmcTpm } from './bmc-tpm.js';
import { BmcError } from './errors.js';
import { Paths, encodeSignedMeasurements } from './redfish.js';
import { roleOfToken, type Role, type RoleTokens } from './tokens.js';

export interface BmcApiOptions {
  tpm: BmcTpm;
  anchors: AnchorLog;
  tokens: RoleTokens;
  anchorPcr: number;
  logger?: boolean;
  /** Test-only fault points in anchoring; see AnchorFaultHooks. */
  faultHooks?: AnchorFaultHooks;
  /** Serve HTTPS with this key and certificate (PEM); plain HTTP without. */
  tls?: { key: string; cert: string };
  limits?: Partial<BmcLimits>;
  /**
   * When it returns a reason, anchors and quotes are refused (500) with it: the PCR holds
   * a value the anchor list cannot explain. Everything else is still served.
   */
  refusal?: () => string | undefined;
}

/**
 * Bounds on what clients can make the service hold. A slow or silent client is cut off
 * by the timeouts; at most `maxConnections` are open at once (more are closed on
 * accept); the host role may anchor `anchorBurst` times at once and `anchorsPerSecond`
 * on average, which bounds how fast the anchor list grows.
 */
export interface BmcLimits {
  maxConnections: number;
  /** A TLS handshake must finish within this. */
  handshakeTimeoutMs: number;
  /** The request headers must arrive within this... */
  headersTimeoutMs: number;
  /** ...and the whole request within this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** How often the server looks for requests over their time (Node checks on a timer). */
  checkIntervalMs: number;
  anchorBurst: number;
  anchorsPerSecond: number;
  /** Anchors per page of GET Anchors when no limit is given, and the most a page may hold. */
  anchorPageDefault: number;
  anchorPageMax: number;
}

export const DEFAULT_LIMITS: Readonly<BmcLimits> = {
  maxConnections: 128, handshakeTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000, anchorBurst: 1_000, anchorsPerSecond: 100, anchorPageDefault: 100, anchorPageMax: 1_000,
};

/** Largest nonce accepted: a TPM2B_DATA holds at most a TPMT_HA, sizeof(TPMT_HA) = 2 + 64 = 66 bytes (Part 2, 10.4.3). */
export const NONCE_SIZE_MAX = 66;
/** Smallest nonce accepted: a verifier's nonce must be fresh, and 16 random bytes do not repeat. */
export const NONCE_SIZE_MIN = 16;

/** A token bucket: `burst` at once, refilled at `perSecond`. */
class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly burst: number, private readonly perSecond: number) { this.tokens = burst; }
  /** Takes one token; returns 0, or the milliseconds until one is available. */
  take(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) { this.tokens -= 1; return 0; }
    return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }
}

declare module 'fastify' {
  interface FastifyContextConfig { roles?: readonly Role[] | 'public' }
  interface FastifyRequest { role?: Role }
}

/** One operation on the TPM at a time, so record → extend → record stays in order and no quote comes in between. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

// ---- request body checks: each failure names the field ----

type Body = Record<string, unknown>;
function objectBody(body: unknown, allowed: readonly string[]): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BmcError('BMC_BAD_REQUEST', 'the request body must be a JSON object', { field: '#' });
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new BmcError('BMC_BAD_REQUEST', `unknown property ${k} (allowed: ${allowed.join(', ')})`, { field: `#/${k}` });
  }
  return body as Body;
}
function stringField(body: Body, name: string, required: boolean): string | undefined {
  const v = body[name];
  if (v === undefined) {
    if (required) throw new BmcError('BMC_BAD_REQUEST', `${name} is required`, { field: `#/${name}` });
    return undefined;
  }
  if (typeof v !== 'string') throw new BmcError('BMC_BAD_REQUEST', `${name} must be a string`, { field: `#/${name}` });
  return v;
}
function hexField(body: Body, name: string, opts: { required: boolean; bytes?: number; maxBytes?: number }): Buffer | undefined {
  const s = stringField(body, name, opts.required);
  if (s === undefined) return undefined;
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new BmcError('BMC_BAD_REQUEST', `${name} must be hex digits (an even number of 0-9, a-f)`, { field: `#/${name}` });
  const b = Buffer.from(s, 'hex');
  if (opts.bytes !== undefined && b.length !== opts.bytes) throw new BmcError('BMC_BAD_REQUEST', `${name} must be exactly ${opts.bytes} bytes (${opts.bytes * 2} hex digits), got ${b.length}`, { field: `#/${name}` });
  if (opts.maxBytes !== undefined && b.length > opts.maxBytes) throw new BmcError('BMC_BAD_REQUEST', `${name} must be at most ${opts.maxBytes} bytes, got ${b.length}`, { field: `#/${name}` });
  return b;
}
function base64Field(body: Body, name: string, required: boolean): Buffer | undefined {
  const s = stringField(body, name, required);
  if (s === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new BmcError('BMC_BAD_REQUEST', `${name} must be Base64 with padding`, { field: `#/${name}` });
  return Buffer.from(s, 'base64');
}
function parseWith<T>(name: string, bytes: Buffer, parse: (b: Buffer) => T): T {
  try { return parse(bytes); } catch (e) {
    throw new BmcError('BMC_BAD_REQUEST', `${name} does not decode: ${(e as Error).message}`, { field: `#/${name}` });
  }
}

function redfishError(reply: FastifyReply, status: number, code: string, message: string, field?: string): FastifyReply {
  const info: Record<string, unknown> = { MessageId: `Base.1.16.${code}`, Message: message, Severity: 'Warning' };
  if (field) info.RelatedProperties = [field];
  return reply.code(status).send({ error: { code: `Base.1.16.${code}`, message, '@Message.ExtendedInfo': [info] } });
}

/** Which banks a quote may select: known hash algorithms the TPM has active. Names the field otherwise. */
function checkBanks(selection: readonly PcrSelection[], banks: readonly number[]): void {
  const name = (alg: number) => HashInfo[alg]?.name.toUpperCase() ?? `0x${alg.toString(16).padStart(4, '0')}`;
  for (const [i, s] of selection.entries()) {
    if (!HashInfo[s.hashAlg]) throw new BmcError('BMC_BAD_REQUEST', `PCRSelection bank ${i} has hash algorithm ${name(s.hashAlg)}, which is not a PCR bank algorithm (SHA1, SHA256, SHA384, SHA512)`, { field: '#/PCRSelection' });
    // A TPM leaves out a bank it does not have and quotes the rest: a quote over an
    // inactive bank would cover nothing and prove nothing, so it is refused here.
    if (!banks.includes(s.hashAlg)) throw new BmcError('BMC_BAD_REQUEST', `PCRSelection selects the ${name(s.hashAlg)} bank, which this TPM does not have active (it has: ${banks.map(name).join(', ') || 'none'})`, { field: '#/PCRSelection' });
    if (selection.findIndex((o) => o.hashAlg === s.hashAlg) !== i) throw new BmcError('BMC_BAD_REQUEST', `PCRSelection names the ${name(s.hashAlg)} bank twice`, { field: '#/PCRSelection' });
  }
}

/** A positive integer from the query string, or the default; names the parameter otherwise. */
function queryInt(query: unknown, name: string, dflt: number, min: number, max: number): number {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new BmcError('BMC_BAD_REQUEST', `query parameter ${name} must be an integer, got ${JSON.stringify(v)}`, { field: name });
  const n = Number(v);
  if (n < min || n > max) throw new BmcError('BMC_BAD_REQUEST', `query parameter ${name} must be ${min}..${max}, got ${n}`, { field: name });
  return n;
}

export function buildBmcApi(options: BmcApiOptions): FastifyInstance {
  const { tpm, anchors, tokens, anchorPcr } = options;
  const limits: BmcLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const tls = options.tls;
  const app = Fastify({
    logger: options.logger ?? false, bodyLimit: 64 * 1024,
    // Our own server, so every bound applies (Fastify sets only some of them, and not the
    // TLS handshake timeout or the connection limit).
    serverFactory: (handler) => {
      const common: http.ServerOptions = {
        requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: limits.checkIntervalMs,
      };
      const server = tls
        ? https.createServer({ ...common, key: tls.key, cert: tls.cert, handshakeTimeout: limits.handshakeTimeoutMs, minVersion: 'TLSv1.2' }, handler)
        : http.createServer(common, handler);
      server.maxConnections = limits.maxConnections;
      // An idle socket (no bytes either way) is closed as well, whatever state it is in.
      server.setTimeout(limits.requestTimeoutMs, (socket) => socket.destroy());
      return server;
    },
  });
  const mutex = new Mutex();
  const anchorLimiter = new RateLimiter(limits.anchorBurst, limits.anchorsPerSecond);
  const refuseIfUnexplained = (): void => {
    const reason = options.refusal?.();
    if (reason) throw new BmcError('BMC_STATE', reason);
  };

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const roles = req.routeOptions.config.roles;
    if (roles === 'public' || roles === undefined) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const role = m?.[1] ? roleOfToken(tokens, m[1]) : undefined;
    if (!role) {
      reply.header('WWW-Authenticate', 'Bearer realm="vigil-bmc"');
      return redfishError(reply, 401, 'NoValidSession', header ? 'the bearer token is not known to this BMC' : 'an Authorization: Bearer token is required');
    }
    if (!roles.includes(role)) return redfishError(reply, 403, 'InsufficientPrivilege', `the ${role} role may not ${req.method} ${req.url} (allowed: ${roles.join(', ')})`);
    req.role = role;
  });

  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof BmcError) return redfishError(reply, err.httpStatus, err.code === 'BMC_BAD_REQUEST' ? 'PropertyValueFormatError' : err.code, err.message, err.field);
    if (err instanceof TpmError) return redfishError(reply, 502, 'TPMError', `the TPM refused: ${err.message}`);
    const e = err as { statusCode?: number; message?: string };
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return redfishError(reply, e.statusCode, 'MalformedJSON', e.message ?? 'bad request', '#');
    return redfishError(reply, 500, 'InternalError', (err as Error).message ?? String(err));
  });
  app.setNotFoundHandler((req, reply) => redfishError(reply, 404, 'ResourceNotFound', `no resource at ${req.method} ${req.url}`));

  const verifier = { roles: ['verifier'] as const };
  const host = { roles: ['host'] as const };

  app.get(Paths.root, { config: { roles: 'public' } }, async () => ({
    '@odata.id': Paths.root, '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot', Id: 'RootService', Name: 'vigil BMC',
    RedfishVersion: '1.17.0',
    ComponentIntegrity: { '@odata.id': Paths.componentIntegrity },
    Oem: { Vigil: { Anchors: { '@odata.id': Paths.anchors } } },
  }));

  app.get(Paths.componentIntegrity, { config: verifier }, async () => ({
    '@odata.id': Paths.componentIntegrity, '@odata.type': '#ComponentIntegrityCollection.ComponentIntegrityCollection',
    Name: 'Component integrity', 'Members@odata.count': 1, Members: [{ '@odata.id': Paths.tpm }],
  }));

  app.get(Paths.tpm, { config: verifier }, async () => ({
    '@odata.id': Paths.tpm, '@odata.type': '#ComponentIntegrity.v1_2_0.ComponentIntegrity', Id: 'TPM_0', Name: 'BMC TPM',
    ComponentIntegrityType: 'TPM', ComponentIntegrityTypeVersion: '2.0', ComponentIntegrityEnabled: true,
    TargetComponentURI: Paths.root,
    TPM: {
      NonceSizeBytesMaximum: NONCE_SIZE_MAX,
      IdentityAuthentication: { ComponentCertificate: { '@odata.id': Paths.ekCertificate } },
    },
    Actions: { '#ComponentIntegrity.TPMGetSignedMeasurements': { target: Paths.getSignedMeasurements } },
    Oem: { Vigil: {
      AnchorPCR: anchorPcr, AnchorBank: 'SHA256',
      AttestationKey: { '@odata.id': Paths.attestationKey },
      Actions: { '#Vigil.ActivateCredential': { target: Paths.activateCredential } },
    } },
  }));

  app.get(Paths.ekCertificate, { config: verifier }, async () => {
    const ekPublic = tpm.ek.outPublic;
    const cert = tpm.ekCertificate;
    return {
      '@odata.id': Paths.ekCertificate, '@odata.type': '#Certificate.v1_7_0.Certificate', Id: 'EK', Name: 'Endorsement key certificate',
      CertificateType: 'PEM',
      CertificateString: cert ? `-----BEGIN CERTIFICATE-----\n${cert.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n` : null,
      Oem: { Vigil: {
        Algorithm: tpm.ekAlgorithm,
        PublicArea: ekPublic.bytes.toString('base64'),
        Name: objectName(ekPublic.public, ekPublic.bytes).toString('hex'),
        PublicKeyPEM: publicKeyPem(ekPublic.public),
        // The CA certificates this BMC was given with its TPM (swtpm: its local CA), as
        // intermediates for the verifier; the verifier's trust store is its own.
        CertificateChain: tpm.caCertificates,
      } },
    };
  });

  app.get(Paths.attestationKey, { config: verifier }, async () => {
    const akPublic = tpm.ak.outPublic;
    return {
      '@odata.id': Paths.attestationKey, Name: 'Attestation key', Algorithm: tpm.akAlgorithm,
      PublicArea: akPublic.bytes.toString('base64'),
      KeyName: tpm.ak.name.toString('hex'),
      PublicKeyPEM: publicKeyPem(akPublic.public),
    };
  });

  app.post(Paths.getSignedMeasurements, { config: verifier }, async (req) => {
    // No body is no request: the verifier's nonce is what makes the quote fresh, so the
    // BMC never picks one for it.
    const body = objectBody(req.body, ['Nonce', 'PCRSelection', 'Scheme', 'Certificate']);
    const nonce = hexField(body, 'Nonce', { required: true, maxBytes: NONCE_SIZE_MAX }) as Buffer;
    if (nonce.length < NONCE_SIZE_MIN) throw new BmcError('BMC_BAD_REQUEST', `Nonce must be ${NONCE_SIZE_MIN} to ${NONCE_SIZE_MAX} bytes of fresh randomness from the verifier, got ${nonce.length}`, { field: '#/Nonce' });
    const selBytes = base64Field(body, 'PCRSelection', false);
    const selection: PcrSelection[] = selBytes ? parseWith('PCRSelection', selBytes, unmarshalPcrSelections) : [{ hashAlg: Alg.SHA256, pcrs: [anchorPcr] }];
    if (selection.length === 0 || selection.some((s) => s.pcrs.length === 0)) throw new BmcError('BMC_BAD_REQUEST', 'PCRSelection has a bank that selects no PCR', { field: '#/PCRSelection' });
    if (selection.some((s) => s.pcrs.some((p) => p > 23))) throw new BmcError('BMC_BAD_REQUEST', 'PCRSelection selects a PCR above 23', { field: '#/PCRSelection' });
    checkBanks(selection, tpm.banks);
    const schemeBytes = base64Field(body, 'Scheme', false);
    const scheme: SignatureScheme | undefined = schemeBytes ? parseWith('Scheme', schemeBytes, unmarshalSignatureScheme) : undefined;
    const akScheme = tpm.ak.outPublic.public.type === 'rsa' || tpm.ak.outPublic.public.type === 'ecc' ? tpm.ak.outPublic.public.scheme : undefined;
    if (scheme && scheme.scheme !== Alg.NULL && akScheme && (scheme.scheme !== akScheme.scheme || scheme.hashAlg !== akScheme.hashAlg)) {
      // The AK is a restricted key with one scheme; the TPM would refuse any other (TPM_RC_SCHEME).
      throw new BmcError('BMC_BAD_REQUEST', `Scheme 0x${scheme.scheme.toString(16)}/0x${scheme.hashAlg.toString(16)} is not the attestation key's scheme 0x${akScheme.scheme.toString(16)}/0x${akScheme.hashAlg.toString(16)}; send the AK's scheme or TPM_ALG_NULL`, { field: '#/Scheme' });
    }
    if (body.Certificate !== undefined) {
      const c = body.Certificate as { '@odata.id'?: unknown };
      if (typeof c !== 'object' || c === null || c['@odata.id'] !== Paths.attestationKey) {
        throw new BmcError('BMC_BAD_REQUEST', `Certificate must be {"@odata.id": "${Paths.attestationKey}"}, the only attestation key of this TPM`, { field: '#/Certificate' });
      }
    }
    // An anchor left pending (its extended record could not be written) is settled
    // first, and the quote refused (500) while it cannot be: a quote must never show a
    // PCR the list cannot explain, and settling after a TPM reset may drop a pending
    // anchor only because no quote ever covered it (see anchoring.ts).
    const q = await mutex.run(async () => {
      refuseIfUnexplained();
      await settlePendingAnchor(tpm, anchors);
      return tpm.quote(nonce, selection, scheme);
    });
    return { SignedMeasurements: encodeSignedMeasurements(q.attest, q.signatureBytes).toString('base64') };
  });

  app.post(Paths.activateCredential, { config: verifier }, async (req) => {
    const body = objectBody(req.body, ['CredentialBlob', 'Secret']);
    const blob = base64Field(body, 'CredentialBlob', true) as Buffer;
    const secret = base64Field(body, 'Secret', true) as Buffer;
    if (blob.length === 0 || blob.length > 1024) throw new BmcError('BMC_BAD_REQUEST', 'CredentialBlob must be 1 to 1024 bytes', { field: '#/CredentialBlob' });
    if (secret.length === 0 || secret.length > 1024) throw new BmcError('BMC_BAD_REQUEST', 'Secret must be 1 to 1024 bytes', { field: '#/Secret' });
    const certInfo = await mutex.run(() => tpm.activate(blob, secret));
    return { CertInfo: certInfo.toString('base64') };
  });

  app.post(Paths.anchors, { config: host }, async (req, reply) => {
    const body = objectBody(req.body, ['Anchor']);
    const anchor = hexField(body, 'Anchor', { required: true, bytes: 32 }) as Buffer;
    // The host is the side an attacker may own: its anchors are rate-limited so it
    // cannot grow the list (and the verifier's work) without bound.
    const wait = anchorLimiter.take();
    if (wait > 0) {
      reply.header('Retry-After', String(Math.ceil(wait / 1000)));
      return redfishError(reply, 429, 'RateLimitExceeded', `more than ${limits.anchorBurst} anchors at once or ${limits.anchorsPerSecond} per second; retry in ${wait} ms`);
    }
    // Under the lock quotes take too, so no quote sees the PCR between the extend and
    // the record of it (see anchoring.ts for why that matters after a crash).
    const entry = await mutex.run(() => { refuseIfUnexplained(); return anchorDigest(tpm, anchors, anchorPcr, anchor, options.faultHooks); });
    return reply.code(201).send(entry);
  });

  // Paged: ?from=SEQ (default 1) &limit=N (default anchorPageDefault, at most
  // anchorPageMax). NextFrom is the seq of the next page, or null after the last.
  app.get(Paths.anchors, { config: verifier }, async (req) => {
    const query = (req.query ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(query)) if (k !== 'from' && k !== 'limit') throw new BmcError('BMC_BAD_REQUEST', `unknown query parameter ${k} (allowed: from, limit)`, { field: k });
    const total = anchors.length;
    const from = queryInt(query, 'from', 1, 1, Number.MAX_SAFE_INTEGER);
    const limit = queryInt(query, 'limit', limits.anchorPageDefault, 1, limits.anchorPageMax);
    // Extended anchors are numbered 1, 2, 3, ... without gaps, so seq N is at index N-1.
    const page = anchors.list().slice(from - 1, from - 1 + limit);
    const nextFrom = from - 1 + limit < total ? from + limit : null;
    return {
      '@odata.id': Paths.anchors, Name: 'Anchors', PCR: anchorPcr, Bank: 'SHA256',
      'Members@odata.count': total, Total: total, From: from, Limit: limit, NextFrom: nextFrom,
      ...(nextFrom !== null ? { 'Members@odata.nextLink': `${Paths.anchors}?from=${nextFrom}&limit=${limit}` } : {}),
      Members: page,
    };
  });

  return app;
}
