// The remote verifier: proves that the log directory it reads is complete and unmodified
// up to the last checkpoint the BMC's TPM holds, or names the first inconsistency.
//
//   1. keys: the EK certificate chains to the trust store; MakeCredential/ActivateCredential
//      proves the AK is in the TPM of that EK; the AK is restricted, sign, fixedTPM,
//      fixedParent and its name is its public area's; EK and AK are pinned in --state
//      (a changed key is an error, never a re-enrolment).
//   2. quote: a fresh 32-byte nonce; the signature by the pinned AK with the pinned scheme;
//      magic and type (strict TPMS_ATTEST parsing); qualifiedSigner = the AK's name;
//      extraData = nonce; the signed selection = the one requested; clock safe, and
//      reset/restart counters and clock not behind the last verified quote.
//   3. anchors: split into epochs by the anchors' own PCR chain (an entry whose pcrValue is
//      the extend of a reset PCR starts one); the quoted PCR must be the value after some
//      prefix of the last epoch (anchors appended after the quote are the rest).
//   4. log: the directory verifies on its own (chain, seqs, seals), every anchor is one of
//      its checkpoints, in order, from the first batch on, and nothing anchored is missing.
//   5. rollback: the log and the anchor list reach at least as far as the last run's.
//   6. silence: unless the agent recorded a clean stop, its last entry is recent (heartbeats).
//   7. monitor: no entry records that the agent's BPF programs were detached or replaced, or
//      that the maps only it writes were changed behind its back
//      (the log is then intact, but what happened after that entry was not all seen).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnchorEntry, BmcApiClient, KeyInfo } from '../bmc/index.js';
import {
  Alg, ObjectAttr, checkEkCertificate, extendPcrValue, makeCredential, objectName, quotePcrDigest, verifyQuote,
  type Attestation, type Signature,
} from '../tpm/index.js';
import { verifyLogDirParallel, LogVerifyError, checkProof, type CheckedSeal, type ProofFile } from '../log/index.js';
import { describeChange, type ProgramChange } from './programs.js';

export type VerifyCheck =
  | 'ek-certificate' | 'credential' | 'ak-attributes' | 'ek-changed' | 'ak-changed' | 'quote' | 'scheme' | 'clock' | 'anchors'
  | 'pcr' | 'log' | 'not-anchored' | 'truncated' | 'rollback' | 'history' | 'silence' | 'monitor' | 'proof' | 'bmc';

export class VerifyFailure extends Error {
  constructor(readonly check: VerifyCheck, message: string) { super(message); this.name = 'VerifyFailure'; }
}

export interface VerifyOptions {
  client: BmcApiClient;
  logDir: string;
  stateDir?: string;
  /** PEM certificates the EK certificate must chain to (needed to enrol). */
  trustPems?: string[];
  /** Longest silence accepted when the agent did not stop cleanly (default: 3 heartbeats + 5 s). */
  maxSilenceMs?: number;
  now?: () => number;
  /** Threads that check the log directory (default: one, plus the CPUs the load leaves idle; 1: this thread only). */
  threads?: number;
}

export interface VerifyResult {
  entries: number;
  firstSeq: number;
  lastSeq: number;
  /** The last anchored checkpoint: its seq, and when the BMC recorded it. */
  anchoredSeq: number;
  anchoredTime: string;
  /** Anchors the quote proves (the rest were appended after it, or are of earlier epochs). */
  quotedAnchors: number;
  anchors: number;
  epochs: number;
  unanchoredEntries: number;
  enrolled: boolean;
  notes: string[];
}

interface VerifierState {
  ek?: { name: string };
  ak?: { name: string; sigAlg: number; hashAlg: number };
  lastQuote?: { clock: string; resetCount: number; restartCount: number; time: string };
  /** lastAnchor: the BMC's last anchor then, which every later list must still hold as it was. */
  lastVerified?: { lastSeq: number; checkpoint: string; anchors: number; time: string; lastAnchor?: AnchorEntry };
}

function loadState(dir: string | undefined): VerifierState {
  if (!dir) return {};
  const path = join(dir, 'verifier-state.json');
  if (!existsSync(path)) return {};
  try { return JSON.parse(readFileSync(path, 'utf8')) as VerifierState; } catch (e) {
    throw new VerifyFailure('rollback', `the verifier state ${path} cannot be read (${(e as Error).message}); refusing to verify without it`);
  }
}
function saveState(dir: string | undefined, s: VerifierState): void {
  if (!dir) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'verifier-state.json');
  writeFileSync(`${path}.tmp`, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

const hex = (b: Buffer): string => b.toString('hex');
const ZERO = Buffer.alloc(32);

async function bmc<T>(what: string, call: () => Promise<T>): Promise<T> {
  try { return await call(); } catch (e) { throw new VerifyFailure('bmc', `${what}: ${(e as Error).message}`); }
}

function checkAkAttributes(ak: KeyInfo): void {
  const a = ak.public.objectAttributes;
  const missing = (['restricted', 'sign', 'fixedTPM', 'fixedParent'] as const).filter((k) => (a & ObjectAttr[k]) === 0);
  if (missing.length > 0) throw new VerifyFailure('ak-attributes', `the AK lacks ${missing.join(', ')} (attributes 0x${a.toString(16)}): it is not a TPM-resident restricted signing key, so its quotes prove nothing`);
  if ((a & ObjectAttr.decrypt) !== 0) throw new VerifyFailure('ak-attributes', 'the AK is also a decryption key: an attestation key must be sign-only');
  const name = objectName(ak.public, ak.publicBytes);
  if (!name.equals(ak.name)) throw new VerifyFailure('ak-attributes', `the AK's name ${hex(ak.name)} is not the name of its public area (${hex(name)})`);
}

async function checkKeys(client: BmcApiClient, state: VerifierState, trustPems: string[] | undefined): Promise<{ ak: KeyInfo; enrolled: boolean; ekName: Buffer }> {
  const ek = await bmc('reading the EK', () => client.endorsementKey());
  const ak = await bmc('reading the AK', () => client.attestationKey());
  let enrolled = false;
  if (state.ek && state.ek.name !== hex(ek.name)) {
    throw new VerifyFailure('ek-changed', `the BMC's endorsement key changed: pinned ${state.ek.name}, now ${hex(ek.name)} (another TPM answers for this node); re-enrol only after checking the hardware`);
  }
  if (state.ak && state.ak.name !== hex(ak.name)) {
    throw new VerifyFailure('ak-changed', `the BMC's attestation key changed: pinned ${state.ak.name}, now ${hex(ak.name)} (a substituted AK); quotes signed by it are not accepted`);
  }
  if (!state.ek) {
    if (!ek.certificatePem) throw new VerifyFailure('ek-certificate', 'the BMC has no EK certificate: cannot enrol a TPM whose manufacturer is unknown');
    if (!trustPems || trustPems.length === 0) throw new VerifyFailure('ek-certificate', 'enrolment needs a trust store (--trust CA.pem) for the EK certificate');
    try {
      checkEkCertificate(Buffer.from(ek.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64'), { public: ek.public, bytes: ek.publicBytes }, trustPems);
    } catch (e) {
      throw new VerifyFailure('ek-certificate', `the EK certificate does not check against the trust store: ${(e as Error).message}`);
    }
    enrolled = true;
  }
  checkAkAttributes(ak);
  // Every run, not only at enrolment: proves the AK still lives next to the pinned EK.
  const secret = randomBytes(32);
  const mc = makeCredential(ek.public, ak.name, secret);
  let back: Buffer;
  try { back = await client.activateCredential(mc.credentialBlob, mc.secret); } catch (e) {
    throw new VerifyFailure('credential', `credential activation failed: the AK is not in the TPM of the EK (${(e as Error).message})`);
  }
  if (!back.equals(secret)) throw new VerifyFailure('credential', 'credential activation returned another secret: the AK is not in the TPM of the EK');
  state.ek = { name: hex(ek.name) };
  return { ak, enrolled, ekName: ek.name };
}

interface Epoch { start: number; entries: AnchorEntry[] }

/** Splits the anchor list by its own PCR chain; an entry that follows neither its predecessor nor a reset PCR is an error. */
function epochsOf(list: readonly AnchorEntry[]): Epoch[] {
  const epochs: Epoch[] = [];
  let prev: AnchorEntry | undefined;
  list.forEach((e, i) => {
    const anchor = Buffer.from(e.anchor, 'hex');
    const value = Buffer.from(e.pcrValue, 'hex');
    const continues = prev !== undefined && prev.pcr === e.pcr && extendPcrValue(Alg.SHA256, Buffer.from(prev.pcrValue, 'hex'), anchor).equals(value);
    if (continues) { (epochs[epochs.length - 1] as Epoch).entries.push(e); prev = e; return; }
    const fromReset = [ZERO, Buffer.alloc(32, 0xff)].some((r) => extendPcrValue(Alg.SHA256, r, anchor).equals(value));
    if (!fromReset) throw new VerifyFailure('anchors', `the BMC's anchor #${e.seq} (${e.time}) records PCR value ${e.pcrValue}, which follows neither anchor #${prev?.seq ?? '-'} nor a reset PCR: the anchor list is inconsistent`);
    if (prev && prev.resetCount === e.resetCount && prev.restartCount === e.restartCount) {
      throw new VerifyFailure('anchors', `anchor #${e.seq} starts from a reset PCR although the TPM was neither reset nor restarted since anchor #${prev.seq} (counters ${e.resetCount}/${e.restartCount}): the PCR was reset behind the BMC's back`);
    }
    epochs.push({ start: i, entries: [e] });
    prev = e;
  });
  return epochs;
}

/** What steps 1-3 establish: the keys, a fresh quote, and the BMC's anchor list proven by it up to `proven` anchors. */
interface ProvenAnchors {
  state: VerifierState;
  notes: string[];
  ak: KeyInfo;
  enrolled: boolean;
  scheme: { sigAlg: number; hashAlg: number };
  clock: Attestation['clockInfo'];
  /** The anchors of the anchor PCR, in order; epochs split by the PCR chain. */
  all: AnchorEntry[];
  epochs: Epoch[];
  /** Anchors the quote proves (the rest were appended after it). */
  proven: number;
}

async function proveAnchors(opts: { client: BmcApiClient; stateDir?: string; trustPems?: string[] }): Promise<ProvenAnchors> {
  const state = loadState(opts.stateDir);
  const notes: string[] = [];
  const { client } = opts;

  // 1. keys
  const { ak, enrolled, ekName } = await checkKeys(client, state, opts.trustPems);

  // 2. a quote over the anchor PCR, for a nonce of ours
  const listBefore = await bmc('reading the anchor list', () => client.anchors());
  const pcr = listBefore.PCR;
  const selection = [{ hashAlg: Alg.SHA256, pcrs: [pcr] }];
  const nonce = randomBytes(32);
  const sm = await bmc('asking for a quote', () => client.signedMeasurements(nonce, selection));
  let att: Attestation;
  try {
    att = verifyQuote(ak.public, sm.attest, sm.signature, { nonce, pcrSelection: selection, ekName, akName: ak.name });
  } catch (e) {
    throw new VerifyFailure('quote', `the quote does not verify: ${(e as Error).message}`);
  }
  // qualifiedSigner is the AK's qualified name: its name under the EK under the endorsement
  // hierarchy (Part 1, 16: QN = nameAlg ‖ H(QN(parent) ‖ Name)).
  const qn = (parentQn: Buffer, name: Buffer) => Buffer.concat([name.subarray(0, 2), createHash('sha256').update(parentQn).update(name).digest()]);
  const endorsement = Buffer.from([0x40, 0x00, 0x00, 0x0b]);
  const akQn = qn(qn(endorsement, ekName), ak.name);
  if (!att.qualifiedSigner.equals(akQn)) throw new VerifyFailure('quote', `the quote's qualifiedSigner ${hex(att.qualifiedSigner)} is not the AK under the pinned EK (${hex(akQn)}): signed by another key`);
  const sig = sm.signature as Signature & { hashAlg?: number };
  const scheme = { sigAlg: sm.signature.sigAlg, hashAlg: sig.hashAlg ?? 0 };
  if (state.ak && (state.ak.sigAlg !== scheme.sigAlg || state.ak.hashAlg !== scheme.hashAlg)) {
    throw new VerifyFailure('scheme', `the quote is signed with scheme 0x${scheme.sigAlg.toString(16)}/0x${scheme.hashAlg.toString(16)}, pinned 0x${state.ak.sigAlg.toString(16)}/0x${state.ak.hashAlg.toString(16)}`);
  }
  const c = att.clockInfo;
  if (!c.safe) throw new VerifyFailure('clock', 'the TPM clock is not safe (it may have gone backwards): the quote\'s time cannot be ordered');
  const lq = state.lastQuote;
  if (lq) {
    if (c.resetCount < lq.resetCount || (c.resetCount === lq.resetCount && c.restartCount < lq.restartCount)) {
      throw new VerifyFailure('clock', `the TPM's reset/restart counters went back (${lq.resetCount}/${lq.restartCount} at ${lq.time}, now ${c.resetCount}/${c.restartCount}): an old TPM state or a replayed quote`);
    }
    if (c.resetCount === lq.resetCount && c.clock < BigInt(lq.clock)) {
      throw new VerifyFailure('clock', `the TPM clock went back (${lq.clock} ms at ${lq.time}, now ${c.clock} ms) without a reset: an old TPM state or a replayed quote`);
    }
  }

  // 3. anchors read after the quote: the quoted PCR is the value after a prefix of the last epoch
  const list = await bmc('reading the anchor list', () => client.anchors());
  const all = list.Members.filter((m) => m.pcr === pcr);
  // The list is append-only: what an earlier run proved must still be in it, unchanged.
  // A TPM reset lets whoever holds the TPM re-extend the PCR with another history and a
  // BMC serve a matching new list (PCR, list and a rewritten log then agree); only the
  // verifier's memory of the old list tells them apart.
  const was = state.lastVerified?.lastAnchor;
  if (was) {
    const now = list.Members.find((m) => m.seq === was.seq);
    const same = now && now.anchor === was.anchor && now.pcr === was.pcr && now.pcrValue === was.pcrValue && now.resetCount === was.resetCount && now.restartCount === was.restartCount && now.time === was.time;
    if (!same) {
      const reset = c.resetCount !== was.resetCount ? `, and the PCR re-extended with another history after a TPM reset (resetCount ${was.resetCount} → ${c.resetCount})` : '';
      throw new VerifyFailure('history', `the BMC's anchor list no longer holds anchor #${was.seq} (checkpoint ${was.anchor}, TPM reset ${was.resetCount}) that the last verification (${state.lastVerified?.time ?? '?'}) proved: ${now ? `anchor #${was.seq} is now ${now.anchor} (TPM reset ${now.resetCount}, ${now.time})` : `the list has ${list.Members.length} anchors`}; the list was replaced${reset}`);
    }
  }
  const epochs = epochsOf(all);
  const q = att.attested.kind === 'quote' ? att.attested.quote : undefined;
  if (!q) throw new VerifyFailure('quote', 'the attestation is not a quote');
  const signHash = sm.signature.sigAlg === Alg.NULL ? Alg.SHA256 : (sig.hashAlg ?? Alg.SHA256);
  const digestOf = (v: Buffer) => quotePcrDigest(signHash, selection, () => v);
  const last = epochs[epochs.length - 1];
  let quoted = -1; // entries of the last epoch the quote covers
  if (last && (last.entries[0] as AnchorEntry).resetCount === c.resetCount) {
    for (let i = last.entries.length; i >= 1; i--) {
      if (digestOf(Buffer.from((last.entries[i - 1] as AnchorEntry).pcrValue, 'hex')).equals(q.pcrDigest)) { quoted = i; break; }
    }
  }
  if (quoted < 0 && (digestOf(ZERO).equals(q.pcrDigest) || digestOf(Buffer.alloc(32, 0xff)).equals(q.pcrDigest))) {
    // A reset PCR: the TPM restarted or was reset after the last anchor.
    if (last && last.entries.some((e) => e.resetCount === c.resetCount && e.restartCount === c.restartCount)) {
      throw new VerifyFailure('pcr', `the quoted PCR ${pcr} is at its reset value, but the BMC anchored into it in this same TPM epoch (reset ${c.resetCount}, restart ${c.restartCount}): the anchors were erased from the PCR`);
    }
    quoted = 0;
    notes.push(`the TPM was reset or restarted after the last anchor (counters ${c.resetCount}/${c.restartCount}); the anchors before are proven by earlier quotes`);
  }
  if (quoted < 0) {
    const reset = lq && lq.resetCount !== c.resetCount ? ` The TPM was reset since the last verification (resetCount ${lq.resetCount} → ${c.resetCount}):` : '';
    throw new VerifyFailure('pcr', `the quoted PCR ${pcr} (digest ${hex(q.pcrDigest)}) is not the value after any anchor the BMC recorded in this TPM epoch.${reset} the PCR was extended outside the BMC's anchor list (a reset TPM re-extended with a forged history, or another TPM)`);
  }
  if (state.lastVerified && all.length < state.lastVerified.anchors) {
    throw new VerifyFailure('rollback', `the BMC's anchor list has ${all.length} anchors, the last verification (${state.lastVerified.time}) saw ${state.lastVerified.anchors}: the BMC's list was rolled back`);
  }

  const proven = (last?.start ?? 0) + Math.max(quoted, 0);
  return { state, notes, ak, enrolled, scheme, clock: c, all, epochs, proven };
}

export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const now = opts.now ?? Date.now;
  const { state, notes, ak, enrolled, scheme, clock: c, all, epochs, proven } = await proveAnchors(opts);
  // 4. the log directory, checked over worker threads when CPUs are idle; what steps 6 and 7 need of the
  // entries is gathered while they are checked (src/log/verify.ts, EntryFacts).
  let summary;
  try {
    summary = await verifyLogDirParallel(opts.logDir, { agentRecords: ['start', 'programs-changed', 'maps-changed', 'heartbeat', 'stop'], threads: opts.threads });
  } catch (e) {
    if (e instanceof LogVerifyError) throw new VerifyFailure('log', `the log in ${opts.logDir}: ${e.message}`);
    throw new VerifyFailure('log', `the log in ${opts.logDir} cannot be read: ${(e as Error).message}`);
  }
  const { facts } = summary;
  const lastEntryTime = facts.lastTime !== undefined ? BigInt(facts.lastTime) : 0n;
  const lastAgent = facts.lastAgent !== undefined ? { what: facts.lastAgent } : undefined;
  // The agent's start, heartbeats and stop by seq and time: the silence check trusts only the
  // anchored ones (entries after the last anchor are chained by whoever holds the host, and a
  // host root could append a fresh heartbeat or a stop there).
  const liveness: Array<{ seq: number; what: string; time: bigint }> = [];
  let heartbeatSeconds = 10;
  const tampered: Array<{ seq: number; time: string; changes: ProgramChange[] }> = [];
  // Root wrote the maps only the agent writes (the agent put its values back within a second).
  const mapsChanged: Array<{ seq: number; time: string; maps: string[] }> = [];
  for (const r of facts.records) {
    if (r.what === 'start') { const h = /"heartbeatSeconds":(\d+)/.exec(r.json); if (h) heartbeatSeconds = Number(h[1]); }
    if (r.what === 'start' || r.what === 'heartbeat' || r.what === 'stop') {
      const e = JSON.parse(r.json) as { time?: string };
      if (typeof e.time === 'string' && /^\d+$/.test(e.time)) liveness.push({ seq: r.seq, what: r.what, time: BigInt(e.time) });
    }
    if (r.what === 'programs-changed') {
      // The entry's bytes are proven by the chain: its JSON is the agent's own rendering.
      const e = JSON.parse(r.json) as { seq: number; time: string; args?: { changes?: ProgramChange[] } };
      tampered.push({ seq: e.seq, time: e.time, changes: e.args?.changes ?? [] });
    }
    if (r.what === 'maps-changed') {
      const e = JSON.parse(r.json) as { seq: number; time: string; args?: { maps?: string[] } };
      mapsChanged.push({ seq: e.seq, time: e.time, maps: e.args?.maps ?? [] });
    }
  }

  // 5. rollback of the log directory
  if (state.lastVerified && summary.lastSeq < state.lastVerified.lastSeq) {
    throw new VerifyFailure('rollback', `the log ends at seq ${summary.lastSeq}, but the last verification (${state.lastVerified.time}) verified up to seq ${state.lastVerified.lastSeq}: the log directory was replaced by an older copy (or cut)`);
  }

  // every anchor is the next checkpoint of the log
  const seals: CheckedSeal[] = summary.seals;
  const byCheckpoint = new Map(seals.map((s, i) => [s.checkpoint, i]));
  let next = 0;
  for (const a of all) {
    const i = byCheckpoint.get(a.anchor);
    if (i === undefined) {
      const lastSeal = seals[seals.length - 1];
      if (next >= seals.length) {
        throw new VerifyFailure('truncated', `the BMC anchored checkpoint ${a.anchor} (anchor #${a.seq}, ${a.time}) after the log's last batch${lastSeal ? ` (batch ${lastSeal.batch}, seq ${lastSeal.firstSeq}..${lastSeal.lastSeq})` : ''}, but the log has no such batch: entries after seq ${summary.lastSeq} were removed (the tail was cut)`);
      }
      const s = seals[next] as CheckedSeal;
      throw new VerifyFailure('not-anchored', `the BMC anchored checkpoint ${a.anchor} (anchor #${a.seq}, ${a.time}) where the log's batch ${s.batch} (seq ${s.firstSeq}..${s.lastSeq}, ${s.file} line ${s.line}) gives ${s.checkpoint}: the log was rewritten after anchoring (entries up to seq ${s.lastSeq} changed, removed or added, and the chain recomputed)`);
    }
    if (i === next - 1 && i >= 0) {
      // The agent sent this checkpoint again (its answer was lost in a crash): the same
      // value twice in a row, replayed as such; nothing is missing or added.
      notes.push(`anchor #${a.seq} repeats batch ${(seals[i] as CheckedSeal).batch}'s checkpoint (a resend after a lost answer)`);
      continue;
    }
    if (i !== next) {
      const s = seals[next] as CheckedSeal;
      throw new VerifyFailure('not-anchored', `anchor #${a.seq} is the log's batch ${(seals[i] as CheckedSeal).batch}, but batch ${s.batch} (seq ${s.firstSeq}..${s.lastSeq}) was never anchored before it`);
    }
    next++;
  }
  const anchoredSeal = next > 0 ? (seals[next - 1] as CheckedSeal) : undefined;
  // A safety net for states saved before lastAnchor was kept: the anchors above speak first.
  const verifiedBefore = state.lastVerified?.checkpoint;
  if (verifiedBefore && !byCheckpoint.has(verifiedBefore)) {
    throw new VerifyFailure('history', `the log no longer holds checkpoint ${verifiedBefore}, which the last verification (${state.lastVerified?.time ?? '?'}) verified up to seq ${state.lastVerified?.lastSeq ?? '?'}: the log before it was rewritten`);
  }
  const lastAnchor = all[all.length - 1];
  if (all.length > proven) notes.push(`${all.length - proven} anchors were appended after the quote (checked against the log, proven by the next quote)`);
  const unanchored = summary.lastSeq - (anchoredSeal?.lastSeq ?? 0);
  if (unanchored > 0) notes.push(`${unanchored} entries after seq ${anchoredSeal?.lastSeq ?? 0} are not anchored yet (${summary.unsealed} not sealed)`);

  const learn = (): void => {
    state.ak = { name: hex(ak.name), ...scheme };
    state.lastQuote = { clock: c.clock.toString(), resetCount: c.resetCount, restartCount: c.restartCount, time: new Date(now()).toISOString() };
    state.lastVerified = { lastSeq: summary.lastSeq, checkpoint: anchoredSeal?.checkpoint ?? '', anchors: all.length, time: new Date(now()).toISOString() };
    // Only an anchor the log explains (the list's tail may run ahead of the log's copy).
    const lastProven = anchoredSeal ? [...all].reverse().find((a) => a.anchor === anchoredSeal.checkpoint) : undefined;
    if (lastProven) state.lastVerified.lastAnchor = lastProven;
    saveState(opts.stateDir, state);
  };
  // 7. The log checked whole (the state is saved, so a later rollback is still caught), but
  // the monitor was blinded: the verdict on the host is not "all seen".
  const monitorAlert = tampered[0];
  if (monitorAlert) {
    learn();
    const when = new Date(Number(BigInt(monitorAlert.time) / 1_000_000n)).toISOString();
    const what = monitorAlert.changes.map(describeChange).join('; ') || 'its BPF programs changed';
    throw new VerifyFailure('monitor', `the log is intact, but entry seq ${monitorAlert.seq} (${when}) records that the agent's ${what}: events after it on that hook were not seen${tampered.length > 1 ? ` (${tampered.length} such entries)` : ''}`);
  }
  const mapsAlert = mapsChanged[0];
  if (mapsAlert) {
    learn();
    const when = new Date(Number(BigInt(mapsAlert.time) / 1_000_000n)).toISOString();
    throw new VerifyFailure('monitor', `the log is intact, but entry seq ${mapsAlert.seq} (${when}) records that BPF maps only the agent writes were changed by someone else (${mapsAlert.maps.join(', ')}): until the agent put them back, within a second, the kernel side ran on their settings${mapsChanged.length > 1 ? ` (${mapsChanged.length} such entries)` : ''}`);
  }

  // 6. silence
  const maxSilence = opts.maxSilenceMs ?? (3 * heartbeatSeconds + 5) * 1000;
  const anchoredSeq = anchoredSeal?.lastSeq ?? 0;
  const anchoredLive = liveness.filter((l) => l.seq <= anchoredSeq);
  const stop = liveness.find((l) => l.what === 'stop' && l.seq === summary.lastSeq);
  if (stop && stop.seq <= anchoredSeq && (lastAgent as { what: string } | undefined)?.what === 'stop') notes.push('the agent stopped cleanly after its last entry');
  else if (summary.entries > 0 && heartbeatSeconds > 0) {
    if (stop) notes.push(`the stop record (seq ${stop.seq}) is not anchored: not taken as a clean stop`);
    // The latest anchored sign of life; without one, the last entry (a log with no anchor at all
    // fails on its own elsewhere).
    const lastLive = anchoredLive.length > 0 ? anchoredLive.reduce((a, b) => (b.time > a.time ? b : a)) : undefined;
    const since = lastLive ? lastLive.time : lastEntryTime;
    const silentMs = now() - Number(since / 1_000_000n);
    if (silentMs > maxSilence) {
      const which = lastLive ? `the last anchored ${lastLive.what}, seq ${lastLive.seq}` : `the last, seq ${summary.lastSeq}`;
      const tail = summary.lastSeq > anchoredSeq ? `; the ${summary.lastSeq - anchoredSeq} entries after seq ${anchoredSeq} are not anchored, so they prove nothing` : '';
      throw new VerifyFailure('silence', `no anchored sign of life for ${Math.round(silentMs / 1000)} s (${which}, at ${new Date(Number(since / 1_000_000n)).toISOString()})${tail}, with heartbeats every ${heartbeatSeconds} s and no anchored stop record: the agent was stopped or cut off`);
    }
  }

  learn();
  return {
    entries: summary.entries, firstSeq: summary.firstSeq, lastSeq: summary.lastSeq, anchoredSeq: anchoredSeal?.lastSeq ?? 0, anchoredTime: lastAnchor?.time ?? '',
    quotedAnchors: proven, anchors: all.length, epochs: epochs.length, unanchoredEntries: unanchored, enrolled, notes,
  };
}

export interface ProofResult {
  kind: ProofFile['vigilProof'];
  /** The proof's checkpoints (oldest first) and the BMC anchors that hold them. */
  anchored: Array<{ checkpoint: string; batch: number; anchorSeq: number; time: string }>;
  enrolled: boolean;
  notes: string[];
}

/**
 * Checks a proof file (vigil log prove / consistency) without the log: its arithmetic,
 * then, as verify does, the keys and a fresh quote, and that each of its checkpoints is in
 * the BMC's quote-proven anchor list (in order, for a consistency proof).
 */
export async function verifyProof(opts: { client: BmcApiClient; proof: ProofFile; stateDir?: string; trustPems?: string[]; now?: () => number }): Promise<ProofResult> {
  const now = opts.now ?? Date.now;
  let checkpoints: string[];
  try { checkpoints = checkProof(opts.proof); } catch (e) { throw new VerifyFailure('proof', `the proof does not check: ${(e as Error).message}`); }
  const { state, notes, ak, enrolled, scheme, clock: c, all, proven } = await proveAnchors(opts);
  const p = opts.proof;
  const batches = p.vigilProof === 'inclusion' ? [p.seal.batch] : p.from.checkpoint === p.to.checkpoint ? [p.from.batch] : [p.from.batch, p.to.batch];
  const anchored: ProofResult['anchored'] = [];
  let after = -1;
  checkpoints.forEach((cp, k) => {
    const i = all.findIndex((a, j) => j > after && a.anchor === cp);
    const batch = batches[k] as number;
    if (i < 0) {
      const earlier = all.findIndex((a) => a.anchor === cp);
      throw new VerifyFailure('not-anchored', earlier >= 0
        ? `the checkpoint of batch ${batch} (${cp}) is anchored (#${(all[earlier] as AnchorEntry).seq}) before the one of batch ${batches[k - 1] ?? '?'}: the two trees are not in the order the proof claims`
        : `the checkpoint of batch ${batch} (${cp}) is not in the BMC's anchor list (${all.length} anchors): the proof's tree was never anchored`);
    }
    const a = all[i] as AnchorEntry;
    if (i >= proven) notes.push(`anchor #${a.seq} (batch ${batch}) was appended after the quote (the next quote proves it)`);
    anchored.push({ checkpoint: cp, batch, anchorSeq: a.seq, time: a.time });
    after = i;
  });
  // What this run learned about the keys and the clock; lastVerified is the log's, untouched.
  state.ak = { name: hex(ak.name), ...scheme };
  state.lastQuote = { clock: c.clock.toString(), resetCount: c.resetCount, restartCount: c.restartCount, time: new Date(now()).toISOString() };
  saveState(opts.stateDir, state);
  return { kind: p.vigilProof, anchored, enrolled, notes };
}
