// The BMC's TLS identity: a certificate given by the operator, or one generated in the
// state directory on first run (self-signed, ECDSA P-256). Clients pin its SHA-256
// fingerprint (written next to it) or check it against a CA.
import { execFile } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BmcError } from './errors.js';

const execFileP = promisify(execFile);

export interface TlsIdentity {
  key: string;
  cert: string;
  certFile: string;
  /** SHA-256 of the certificate's DER, lowercase hex: what a client pins. */
  fingerprintSha256: string;
}

/** SHA-256 of a PEM certificate's DER, lowercase hex without separators. */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

export function tlsPaths(stateDir: string): { cert: string; key: string; fingerprint: string } {
  return { cert: join(stateDir, 'tls-cert.pem'), key: join(stateDir, 'tls-key.pem'), fingerprint: join(stateDir, 'tls-cert.sha256') };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Whether plain HTTP may be served on `host`: on loopback only, where no network carries the tokens. */
export function checkPlainHttpAllowed(host: string): void {
  if (!isLoopback(host)) {
    throw new BmcError('BMC_CONFIG', `--plain-http is allowed on a loopback address only (127.0.0.0/8, ::1, localhost), not ${host}: `
      + 'bearer tokens would cross the management network in clear; serve HTTPS (the default) instead');
  }
}

/**
 * The certificate given (both files), or the one in the state directory, generated
 * there on first run with the listen address and loopback as subject alternative names.
 * The key is owner-only; the certificate and its fingerprint are public.
 */
export async function loadTlsIdentity(stateDir: string, listenHost: string, given?: { certFile: string; keyFile: string }): Promise<TlsIdentity> {
  let certFile: string;
  let keyFile: string;
  if (given) {
    ({ certFile, keyFile } = given);
  } else {
    const p = tlsPaths(stateDir);
    certFile = p.cert; keyFile = p.key;
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      const san = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost']);
      if (isIP(listenHost)) san.add(`IP:${listenHost}`); else if (listenHost !== '0.0.0.0' && listenHost !== '::') san.add(`DNS:${listenHost}`);
      const tmpKey = `${keyFile}.tmp`;
      rmSync(tmpKey, { force: true });
      try {
        await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tmpKey, '-out', `${certFile}.tmp`,
          '-days', '3650', '-subj', '/CN=vigil-bmc', '-addext', `subjectAltName=${[...san].join(',')}`,
          '-addext', 'keyUsage=critical,digitalSignature,keyCertSign', '-addext', 'extendedKeyUsage=serverAuth'], { timeout: 30_000 });
      } catch (e) {
        throw new BmcError('BMC_STATE', `cannot generate the TLS certificate in ${stateDir} with openssl: ${(e as Error).message}; give one with --tls-cert FILE --tls-key FILE`, { cause: e });
      }
      chmodSync(tmpKey, 0o600);
      // Key first, then the certificate: a crash in between leaves no certificate, and the next start makes both again.
      writeFileSync(keyFile, readFileSync(tmpKey), { mode: 0o600 }); rmSync(tmpKey, { force: true });
      writeFileSync(certFile, readFileSync(`${certFile}.tmp`), { mode: 0o644 }); rmSync(`${certFile}.tmp`, { force: true });
    }
    chmodSync(keyFile, 0o600);
  }
  let key: string;
  let cert: string;
  try { key = readFileSync(keyFile, 'utf8'); } catch (e) { throw new BmcError('BMC_CONFIG', `cannot read the TLS key ${keyFile}: ${(e as Error).message}`, { cause: e }); }
  try { cert = readFileSync(certFile, 'utf8'); } catch (e) { throw new BmcError('BMC_CONFIG', `cannot read the TLS certificate ${certFile}: ${(e as Error).message}`, { cause: e }); }
  let fingerprintSha256: string;
  try { fingerprintSha256 = certificateFingerprint(cert); } catch (e) { throw new BmcError('BMC_CONFIG', `${certFile} is not a PEM certificate: ${(e as Error).message}`, { cause: e }); }
  writeFileSync(tlsPaths(stateDir).fingerprint, fingerprintSha256 + '\n', { mode: 0o644 });
  return { key, cert, certFile, fingerprintSha256 };
}
