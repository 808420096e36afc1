// The BMC service assembled: state directory, TPM, tokens, anchor list, HTTP API.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnchorLog, type AnchorLogOptions } from './anchors.js';
import { explainPcr, settlePendingAnchor, type AnchorFaultHooks } from './anchoring.js';
import { BmcTpm, DEFAULT_ANCHOR_PCR, type TpmSource } from './bmc-tpm.js';
import { BmcError } from './errors.js';
import { buildBmcApi, type BmcLimits } from './server.js';
import { checkPlainHttpAllowed, loadTlsIdentity, type TlsIdentity } from './tls.js';
import { ensureTokens, tokenPath, type RoleTokens } from './tokens.js';
import type { KeyAlgorithm } from '../tpm/index.js';

export interface BmcServiceOptions {
  stateDir: string;
  /** Management address to listen on (an out-of-band interface in production). */
  host: string;
  port: number;
  source?: TpmSource;
  anchorPcr?: number;
  ekAlgorithm?: KeyAlgorithm;
  akAlgorithm?: KeyAlgorithm;
  logger?: boolean;
  /**
   * Serve plain HTTP instead of HTTPS: allowed on a loopback address only (tests, or a
   * TLS-terminating proxy on the same machine). Refused elsewhere with BMC_CONFIG.
   */
  plainHttp?: boolean;
  /** The operator's TLS certificate and key (PEM files); without, one is generated in the state directory on first run. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  limits?: Partial<BmcLimits>;
  /**
   * Called once if the service can no longer work and must end: the swtpm it owns died.
   * `vigil bmc` exits non-zero so a supervisor restarts it.
   */
  onFatal?: (err: BmcError) => void;
  /** Test-only: fault points in anchoring and in the anchor list's writes, to simulate crashes and failing disks. */
  faults?: { anchoring?: AnchorFaultHooks; anchorLog?: AnchorLogOptions };
}

export interface BmcService {
  /** Base URL, e.g. https://10.200.1.2:8443 */
  url: string;
  /** The TLS certificate (PEM) and its SHA-256 fingerprint (hex), for clients to pin; absent with plainHttp. */
  tls?: { certPem: string; certFile: string; fingerprintSha256: string };
  tokens: RoleTokens;
  tokenFiles: { host: string; verifier: string };
  tpm: BmcTpm;
  anchorPcr: number;
  /**
   * Why anchors and quotes are refused from the start: a pending anchor the PCR cannot
   * explain (BMC_STATE). The service still answers everything else (the anchor list,
   * the EK certificate) so an operator can see what happened.
   */
  unsettled?: string;
  /** How many client connections are open now (what the connection limit bounds). */
  openConnections(): Promise<number>;
  close(): Promise<void>;
}

/**
 * One BMC per state directory: a start kills whatever swtpm still serves the directory's
 * TPM state (left by a BMC killed with SIGKILL), so it must first make sure no live BMC
 * still uses it. `bmc.pid` names the BMC that holds the directory.
 */
function claimStateDir(stateDir: string): void {
  const pidFile = join(stateDir, 'bmc.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    let alive = false;
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, 0);
        // A live process of that pid is the holder if it is this process (a service not
        // closed) or its command line names the directory (`vigil bmc --state-dir DIR`).
        alive = pid === process.pid || readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(stateDir);
      } catch { alive = false; }
    }
    if (alive) throw new BmcError('BMC_STATE', `another BMC (pid ${pid}) serves the state directory ${stateDir}; stop it first (two BMCs cannot share one TPM state)`);
  }
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
}
function releaseStateDir(stateDir: string): void {
  const pidFile = join(stateDir, 'bmc.pid');
  try { if (Number(readFileSync(pidFile, 'utf8').trim()) === process.pid) rmSync(pidFile, { force: true }); } catch { /* already gone */ }
}

export async function startBmcService(options: BmcServiceOptions): Promise<BmcService> {
  if (options.plainHttp) checkPlainHttpAllowed(options.host);
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(options.stateDir, 0o700);
  claimStateDir(options.stateDir);
  let service: BmcService;
  try {
    service = await startClaimed(options);
  } catch (e) {
    releaseStateDir(options.stateDir);
    throw e;
  }
  const close = service.close;
  return { ...service, close: async () => { try { await close(); } finally { releaseStateDir(options.stateDir); } } };
}

async function startClaimed(options: BmcServiceOptions): Promise<BmcService> {
  const anchorPcr = options.anchorPcr ?? DEFAULT_ANCHOR_PCR;
  if (!Number.isInteger(anchorPcr) || anchorPcr < 0 || anchorPcr > 23) throw new BmcError('BMC_CONFIG', `anchor PCR ${anchorPcr} is not 0..23`);
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined)) throw new BmcError('BMC_CONFIG', '--tls-cert and --tls-key go together');
  if (options.plainHttp && options.tlsCertFile) throw new BmcError('BMC_CONFIG', '--plain-http and --tls-cert exclude each other');
  const tls: TlsIdentity | undefined = options.plainHttp ? undefined
    : await loadTlsIdentity(options.stateDir, options.host, options.tlsCertFile && options.tlsKeyFile ? { certFile: options.tlsCertFile, keyFile: options.tlsKeyFile } : undefined);
  const tokens = ensureTokens(options.stateDir);
  const anchors = new AnchorLog(join(options.stateDir, 'anchors.jsonl'), options.faults?.anchorLog);
  let tpm: BmcTpm;
  try {
    tpm = await BmcTpm.open({ stateDir: options.stateDir, source: options.source ?? { kind: 'swtpm' }, ekAlgorithm: options.ekAlgorithm, akAlgorithm: options.akAlgorithm });
  } catch (e) { anchors.close(); throw e; }
  // An anchor left pending by a crash is settled before anyone can quote or anchor, so
  // the list served from the first request on replays to the PCR.
  let unsettled: string | undefined;
  try {
    await settlePendingAnchor(tpm, anchors);
  } catch (e) {
    if (e instanceof BmcError && e.code === 'BMC_STATE') {
      // A PCR that holds neither value refuses anchors and quotes (each settles first and
      // fails the same way), but not the service: its list is what an operator needs.
      unsettled = e.message;
    } else {
      anchors.close(); await tpm.close();
      if (e instanceof BmcError) throw e;
      throw new BmcError('BMC_TPM', `cannot settle the pending anchor of ${anchors.path}: ${(e as Error).message}`, { cause: e });
    }
  }
  // With nothing pending, the list must still explain the PCR: a PCR someone else
  // extended (or a list of another TPM) would make every later quote unverifiable.
  if (unsettled === undefined) {
    try {
      unsettled = await explainPcr(tpm, anchors, anchorPcr);
    } catch (e) {
      anchors.close(); await tpm.close();
      throw new BmcError('BMC_TPM', `cannot read PCR ${anchorPcr} to check it against ${anchors.path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const app = buildBmcApi({
    tpm, anchors, tokens, anchorPcr, logger: options.logger, faultHooks: options.faults?.anchoring,
    tls: tls ? { key: tls.key, cert: tls.cert } : undefined, limits: options.limits, refusal: () => unsettled,
  });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (e) {
    anchors.close(); await tpm.close();
    throw new BmcError('BMC_CONFIG', `cannot listen on ${options.host}:${options.port}: ${(e as Error).message}`, { cause: e });
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;
  const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closed = false;
  void tpm.swtpmExited.then((code) => {
    if (closed) return;
    options.onFatal?.(new BmcError('BMC_TPM', `the swtpm this BMC owns (pid ${tpm.swtpmPid}) ended unexpectedly (exit ${code}); the TPM is gone, so the service stops`));
  });
  return {
    url: `${tls ? 'https' : 'http'}://${hostPart}:${port}`,
    ...(tls ? { tls: { certPem: tls.cert, certFile: tls.certFile, fingerprintSha256: tls.fingerprintSha256 } } : {}),
    tokens,
    tokenFiles: { host: tokenPath(options.stateDir, 'host'), verifier: tokenPath(options.stateDir, 'verifier') },
    tpm,
    anchorPcr,
    ...(unsettled !== undefined ? { unsettled } : {}),
    openConnections: () => new Promise<number>((resolveCount, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolveCount(n)))),
    async close() {
      if (closed) return;
      closed = true;
      // Open connections (a slow client) must not hold the close up.
      app.server.closeAllConnections();
      await app.close();
      anchors.close();
      await tpm.close();
    },
  };
}
