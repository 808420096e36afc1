// The agent's log and anchoring settings: config file sections `log` and `anchor`, and
// the flags, kept here so the agent's own config code only calls in.
//
//   log:    { dir, batchSize: 1000, batchMs: 1000, segmentBytes: 67108864, heartbeatSeconds: 10, programCheckMs: 500 }
//   anchor: { bmc: URL, tokenFile: FILE, caFile?: PEM FILE, pinSha256?: HEX }
import { DEFAULT_LOG_SETTINGS, type AnchorSettings, type LogSettings } from './agent-log.js';

export type { AnchorSettings, LogSettings } from './agent-log.js';

export const LOG_USAGE = `  --log DIR              write the tamper-evident log (hash chain, sealed batches) in DIR
  --log-batch N          seal a batch after N entries (default 1000)
  --log-batch-ms MS      seal a batch MS milliseconds after its first entry (default 1000);
                         an INSECURE entry is sealed and anchored at once
  --log-segment-bytes N  start a new segment file after N bytes (default 64 MiB)
  --heartbeat SECONDS    a heartbeat entry this often (default 10; 0: none)
  --program-check-ms MS  re-check that the BPF programs are still attached this often
                         (default 500; 0: never); a change is an INSECURE entry
  --bmc URL              anchor each batch's checkpoint in this BMC (needs --log, --bmc-token)
  --bmc-token FILE       the BMC's host token (the 'host' role)
  --bmc-ca FILE          PEM certificate(s) the BMC's HTTPS certificate must chain to
  --bmc-pin HEX          SHA-256 fingerprint of the BMC's certificate (its tls-cert.sha256), pinned`;

export interface LogFlags { dir?: string; batchSize?: number; batchMs?: number; segmentBytes?: number; heartbeatSeconds?: number; programCheckMs?: number; bmc?: string; tokenFile?: string; caFile?: string; pinSha256?: string }

type Obj = Record<string, unknown>;

function positiveInt(v: unknown, where: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new Error(`${where}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return v;
}
function nonEmpty(v: unknown, where: string, what: string): string {
  if (typeof v !== 'string' || v === '') throw new Error(`${where}: must be ${what}`);
  return v;
}
function checkUrl(v: string, where: string): string {
  let u: URL;
  try { u = new URL(v); } catch { throw new Error(`${where}: '${v}' is not a URL (https://HOST:PORT)`); }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${where}: '${v}' must be an https:// (or http://) URL`);
  return v.replace(/\/+$/, '');
}
function checkPin(v: string, where: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v.replace(/:/g, ''))) throw new Error(`${where}: expected the 64 hex digits of a SHA-256, got '${v}'`);
  return v.replace(/:/g, '').toLowerCase();
}

export function parseLogSection(value: unknown, where: string): Partial<LogSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: must be a mapping with dir, batchSize, batchMs, segmentBytes, heartbeatSeconds, programCheckMs`);
  const out: Partial<LogSettings> = {};
  for (const [k, v] of Object.entries(value as Obj)) {
    const at = `${where}.${k}`;
    switch (k) {
      case 'dir': out.dir = nonEmpty(v, at, 'a directory path'); break;
      case 'batchSize': out.batchSize = positiveInt(v, at); break;
      case 'batchMs': out.batchMs = positiveInt(v, at); break;
      case 'segmentBytes': out.segmentBytes = positiveInt(v, at, 4096); break;
      case 'heartbeatSeconds': out.heartbeatSeconds = positiveInt(v, at, 0); break;
      case 'programCheckMs': out.programCheckMs = positiveInt(v, at, 0); break;
      default: throw new Error(`${at}: unknown key; known keys are dir, batchSize, batchMs, segmentBytes, heartbeatSeconds, programCheckMs`);
    }
  }
  return out;
}

export function parseAnchorSection(value: unknown, where: string): Partial<AnchorSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: must be a mapping with bmc, tokenFile, caFile, pinSha256`);
  const out: Partial<AnchorSettings> = {};
  for (const [k, v] of Object.entries(value as Obj)) {
    const at = `${where}.${k}`;
    switch (k) {
      case 'bmc': out.bmc = checkUrl(nonEmpty(v, at, 'the BMC URL'), at); break;
      case 'tokenFile': out.tokenFile = nonEmpty(v, at, 'the path of the host token file'); break;
      case 'caFile': out.caFile = nonEmpty(v, at, 'the path of a PEM file'); break;
      case 'pinSha256': out.pinSha256 = checkPin(nonEmpty(v, at, 'a SHA-256 in hex'), at); break;
      default: throw new Error(`${at}: unknown key; known keys are bmc, tokenFile, caFile, pinSha256`);
    }
  }
  return out;
}

/** Takes the flag if it is one of the log's; false when it is not. */
export function applyLogFlag(f: LogFlags, name: string, value: () => string): boolean {
  const int = (min: number): number => {
    const v = value();
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`option ${name}: expected an integer ≥ ${min}, got '${v}'`);
    return Number(v);
  };
  switch (name) {
    case '--log': f.dir = value(); return true;
    case '--log-batch': f.batchSize = int(1); return true;
    case '--log-batch-ms': f.batchMs = int(1); return true;
    case '--log-segment-bytes': f.segmentBytes = int(4096); return true;
    case '--heartbeat': f.heartbeatSeconds = int(0); return true;
    case '--program-check-ms': f.programCheckMs = int(0); return true;
    case '--bmc': f.bmc = checkUrl(value(), 'option --bmc'); return true;
    case '--bmc-token': f.tokenFile = value(); return true;
    case '--bmc-ca': f.caFile = value(); return true;
    case '--bmc-pin': f.pinSha256 = checkPin(value(), 'option --bmc-pin'); return true;
    default: return false;
  }
}

/** Flags over the file's sections over the defaults; checks the combination. */
export function finishLogConfig(fileLog: Partial<LogSettings> | undefined, fileAnchor: Partial<AnchorSettings> | undefined, f: LogFlags): { log?: LogSettings; anchor?: AnchorSettings } {
  const pick = <T>(a: T | undefined, b: T | undefined): T | undefined => (a !== undefined ? a : b);
  const dir = pick(f.dir, fileLog?.dir);
  const bmc = pick(f.bmc, fileAnchor?.bmc);
  const tokenFile = pick(f.tokenFile, fileAnchor?.tokenFile);
  const out: { log?: LogSettings; anchor?: AnchorSettings } = {};
  if (dir !== undefined) {
    out.log = {
      dir,
      batchSize: pick(f.batchSize, fileLog?.batchSize) ?? DEFAULT_LOG_SETTINGS.batchSize,
      batchMs: pick(f.batchMs, fileLog?.batchMs) ?? DEFAULT_LOG_SETTINGS.batchMs,
      segmentBytes: pick(f.segmentBytes, fileLog?.segmentBytes) ?? DEFAULT_LOG_SETTINGS.segmentBytes,
      heartbeatSeconds: pick(f.heartbeatSeconds, fileLog?.heartbeatSeconds) ?? DEFAULT_LOG_SETTINGS.heartbeatSeconds,
      programCheckMs: pick(f.programCheckMs, fileLog?.programCheckMs) ?? DEFAULT_LOG_SETTINGS.programCheckMs,
    };
  } else if (f.batchSize !== undefined || f.batchMs !== undefined || f.segmentBytes !== undefined || f.heartbeatSeconds !== undefined || f.programCheckMs !== undefined || fileLog !== undefined) {
    throw new Error('the log settings need a log directory: --log DIR (or log.dir in the config file)');
  }
  if (bmc !== undefined || tokenFile !== undefined || f.caFile !== undefined || f.pinSha256 !== undefined || fileAnchor !== undefined) {
    if (bmc === undefined) throw new Error('anchoring needs the BMC URL: --bmc URL (or anchor.bmc)');
    if (tokenFile === undefined) throw new Error('anchoring needs the host token: --bmc-token FILE (or anchor.tokenFile)');
    if (!out.log) throw new Error('anchoring needs the log: --log DIR (or log.dir) with --bmc');
    out.anchor = { bmc, tokenFile };
    const caFile = pick(f.caFile, fileAnchor?.caFile);
    const pinSha256 = pick(f.pinSha256, fileAnchor?.pinSha256);
    if (caFile !== undefined) out.anchor.caFile = caFile;
    if (pinSha256 !== undefined) out.anchor.pinSha256 = pinSha256;
  }
  return out;
}
