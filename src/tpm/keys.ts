// The endorsement and attestation keys, built from the client's commands: the EK from
// the TCG template, its certificate from NV, an AK under the EK (endorsement hierarchy),
// and credential activation with the EK's PolicySecret(TPM_RH_ENDORSEMENT) policy.
import crypto from 'node:crypto';
import { Handle } from './constants.js';
import { passwordSession } from './command.js';
import { TpmResponseError, TpmVerifyError } from './errors.js';
import { akTemplate, EK_CERT_NV_INDEX, ekTemplate, type KeyAlgorithm } from './templates.js';
import { publicKeyFromTpm, samePublicKey } from './verifier.js';
import type { TpmClient, PublicArea } from './client.js';

export interface LoadedKey {
  handle: number;
  outPublic: PublicArea;
  /** The TPM's name for the key (nameAlg ‖ digest of its public area). */
  name: Buffer;
}

/** Creates (re-derives) the EK of the standard low-range template; same TPM, same key. */
export async function createEk(client: TpmClient, alg: KeyAlgorithm): Promise<LoadedKey> {
  const r = await client.createPrimary(Handle.ENDORSEMENT, ekTemplate(alg));
  return { handle: r.handle, outPublic: r.outPublic, name: r.name };
}

/**
 * The EK certificate (DER) from its NV index, or undefined when the TPM has none. The
 * index may be larger than the certificate; the DER length decides where it ends.
 */
export async function readEkCertificate(client: TpmClient, alg: KeyAlgorithm): Promise<Buffer | undefined> {
  const index = EK_CERT_NV_INDEX[alg];
  try {
    await client.nvReadPublic(index);
  } catch (e) {
    if (e instanceof TpmResponseError) return undefined;
    throw e;
  }
  const raw = await client.nvRead(index);
  return derPrefix(raw);
}

function derPrefix(raw: Buffer): Buffer {
  // A DER SEQUENCE: 0x30, then a short or long length.
  if (raw.length < 2 || raw[0] !== 0x30) return raw;
  const first = raw[1] as number;
  if (first < 0x80) return raw.subarray(0, 2 + first);
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (raw[2 + i] ?? 0);
  return raw.subarray(0, Math.min(raw.length, 2 + n + len));
}

/**
 * Checks an EK certificate: its key is the EK's, and it chains to one of `caPems`
 * (each certificate in the chain signed by the next, ending at a given certificate).
 */
export function checkEkCertificate(certDer: Buffer, ekPublic: PublicArea, caPems: readonly string[]): crypto.X509Certificate {
  const cert = new crypto.X509Certificate(certDer);
  if (!samePublicKey(cert.publicKey, publicKeyFromTpm(ekPublic.public))) throw new TpmVerifyError('the EK certificate is for a different key than this TPM\'s EK');
  const cas = caPems.map((p) => new crypto.X509Certificate(p));
  let current = cert;
  for (let depth = 0; depth < 8; depth++) {
    const issuer = cas.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (!issuer) throw new TpmVerifyError(`the certificate "${current.subject.replace(/\n/g, ', ')}" is not signed by any trusted CA`);
    if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return cert;
    current = issuer;
  }
  throw new TpmVerifyError('the EK certificate chain is too long');
}

/** The AK blob as Create returned it, so the same key can be loaded again later. */
export interface AkBlob { outPrivate: Buffer; outPublic: PublicArea }

/** Creates an AK as a child of the EK (authorized with the EK policy). */
export async function createAk(client: TpmClient, ekHandle: number, alg: KeyAlgorithm): Promise<AkBlob> {
  const r = await client.withPolicySecret(Handle.ENDORSEMENT, (s) => client.create(ekHandle, s, akTemplate(alg)));
  return { outPrivate: r.outPrivate, outPublic: r.outPublic };
}

export async function loadAk(client: TpmClient, ekHandle: number, blob: AkBlob): Promise<LoadedKey> {
  const r = await client.withPolicySecret(Handle.ENDORSEMENT, (s) => client.load(ekHandle, s, blob.outPrivate, blob.outPublic.bytes));
  return { handle: r.handle, outPublic: blob.outPublic, name: r.name };
}

/** TPM2_ActivateCredential for `akHandle` with the EK: returns the secret the verifier protected. */
export function activateCredential(client: TpmClient, akHandle: number, ekHandle: number, credentialBlob: Uint8Array, secret: Uint8Array): Promise<Buffer> {
  return client.withPolicySecret(Handle.ENDORSEMENT, (ekSession) =>
    client.activateCredential(akHandle, ekHandle, credentialBlob, secret, { activate: passwordSession(), key: ekSession }));
}
