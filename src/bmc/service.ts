// The BMC service assembled: state directory, TPM, tokens, anchor list, HTTP API.
import { mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { AnchorLog, type AnchorLogOptions } from './anchors.js';
import { settlePendingAnchor, type AnchorFaultHooks } from './anchoring.js';
import { BmcTpm, DEFAULT_ANCHOR_PCR, type TpmSource } from './bmc-tpm.js';
import { BmcError } from './errors.js';
import { buildBmcApi } from './server.js';
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
  /** Test-only: fault points in anchoring and in the anchor list's writes, to simulate crashes and failing disks. */
  faults?: { anchoring?: AnchorFaultHooks; anchorLog?: AnchorLogOptions };
}

export interface BmcService {
  /** Base URL, e.g. http://10.200.1.2:8443 */
  url: string;
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
  close(): Promise<void>;
}

export async function startBmcService(options: BmcServiceOptions): Promise<BmcService> {
  const anchorPcr = options.anchorPcr ?? DEFAULT_ANCHOR_PCR;
  if (!Number.isInteger(anchorPcr) || anchorPcr < 0 || anchorPcr > 23) throw new BmcError('BMC_CONFIG', `anchor PCR ${anchorPcr} is not 0..23`);
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(options.stateDir, 0o700);
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
  const app = buildBmcApi({ tpm, anchors, tokens, anchorPcr, logger: options.logger, faultHooks: options.faults?.anchoring });
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
  return {
    url: `http://${hostPart}:${port}`,
    tokens,
    tokenFiles: { host: tokenPath(options.stateDir, 'host'), verifier: tokenPath(options.stateDir, 'verifier') },
    tpm,
    anchorPcr,
    ...(unsettled !== undefined ? { unsettled } : {}),
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      anchors.close();
      await tpm.close();
    },
  };
}
