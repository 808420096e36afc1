// The BMC's HTTP API (Redfish-style). Routes declare which roles may call them; the
// auth hook answers 401 for a missing or unknown token and 403 for a known token of the
// wrong role before any handler runs.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  Alg, TpmError, objectName, publicKeyPem, unmarshalPcrSelections, unmarshalSignatureScheme,
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
}

/** Largest nonce accepted: a TPM2B_DATA holds at most a TPMT_HA, i.e. a 64-byte digest here. */
export const NONCE_SIZE_MAX = 64;

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

export function buildBmcApi(options: BmcApiOptions): FastifyInstance {
  const { tpm, anchors, tokens, anchorPcr } = options;
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024 });
  const mutex = new Mutex();

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
    const body = objectBody(req.body ?? {}, ['Nonce', 'PCRSelection', 'Scheme', 'Certificate']);
    const nonce = hexField(body, 'Nonce', { required: false, maxBytes: NONCE_SIZE_MAX }) ?? await tpm.client.getRandom(32);
    const selBytes = base64Field(body, 'PCRSelection', false);
    const selection: PcrSelection[] = selBytes ? parseWith('PCRSelection', selBytes, unmarshalPcrSelections) : [{ hashAlg: Alg.SHA256, pcrs: [anchorPcr] }];
    if (selection.length === 0 || selection.every((s) => s.pcrs.length === 0)) throw new BmcError('BMC_BAD_REQUEST', 'PCRSelection selects no PCR', { field: '#/PCRSelection' });
    if (selection.some((s) => s.pcrs.some((p) => p > 23))) throw new BmcError('BMC_BAD_REQUEST', 'PCRSelection selects a PCR above 23', { field: '#/PCRSelection' });
    const schemeBytes = base64Field(body, 'Scheme', false);
    const scheme: SignatureScheme | undefined = schemeBytes ? parseWith('Scheme', schemeBytes, unmarshalSignatureScheme) : undefined;
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
    // Under the lock quotes take too, so no quote sees the PCR between the extend and
    // the record of it (see anchoring.ts for why that matters after a crash).
    const entry = await mutex.run(() => anchorDigest(tpm, anchors, anchorPcr, anchor, options.faultHooks));
    return reply.code(201).send(entry);
  });

  app.get(Paths.anchors, { config: verifier }, async () => ({
    '@odata.id': Paths.anchors, Name: 'Anchors', PCR: anchorPcr, Bank: 'SHA256',
    'Members@odata.count': anchors.length, Members: anchors.list(),
  }));

  return app;
}
