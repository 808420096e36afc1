// Anchoring: the order of the durable list and the PCR, and how a pending anchor left by
// a crash or a failure is settled. The invariant: replaying the extended entries of the
// list (of the current TPM epoch) gives the PCR's value, whatever was interrupted where.
//
//   1. record the anchor as pending (fsync'd)   — cannot write: refuse, nothing extended
//   2. TPM2_PCR_Extend                           — a crash here: the PCR may or may not hold it
//   3. record it as extended, with the PCR value — cannot write: it stays pending
//
// A pending anchor is settled before anything else touches the PCR (the next anchor,
// or the service's start) by reading the PCR and comparing it with the list replayed
// without and with the pending anchor.
import { Alg, TpmResponseError, extendPcrValue } from '../tpm/index.js';
import type { AnchorEntry, AnchorLog, PendingAnchor } from './anchors.js';
import type { BmcTpm } from './bmc-tpm.js';
import { BmcError } from './errors.js';

/**
 * Test-only fault points: called between the steps above, so a test can end the process
 * there (a crash) or fail the step. Production code passes none.
 */
export interface AnchorFaultHooks {
  /** After the pending record is durable, before PCR_Extend. */
  pendingRecorded?: (seq: number) => void | Promise<void>;
  /** After PCR_Extend, before the extended record is written. */
  extended?: (seq: number) => void | Promise<void>;
}

export type Settlement = 'none' | 'extended' | 'dropped';

/**
 * The values the PCR may have held just before `p` was extended: the value after the last
 * extended anchor of the same PCR and reset epoch, or the PCR's reset value when the
 * epoch had none. A restart or resume in between (same resetCount, another restartCount)
 * leaves either, so both count then. 0x00.. and 0xff.. are the reset values of PCRs
 * (17-22 start at all ones on PC Client TPMs; 23 and the others at zero).
 */
function valuesBefore(list: readonly AnchorEntry[], p: PendingAnchor): Buffer[] {
  const resetValues = [Buffer.alloc(32, 0), Buffer.alloc(32, 0xff)];
  for (let i = list.length - 1; i >= 0; i--) {
    const e = list[i] as AnchorEntry;
    if (e.pcr !== p.pcr) continue;
    if (e.resetCount !== p.resetCount) break;
    const after = Buffer.from(e.pcrValue, 'hex');
    return e.restartCount === p.restartCount ? [after] : [after, ...resetValues];
  }
  return resetValues;
}

/**
 * Settles the pending anchor, if any, from the PCR: recorded as extended when the PCR
 * holds it, dropped when it does not. Throws BMC_STATE when the PCR holds neither value
 * in the same epoch (something else extended it: the list cannot explain the PCR until
 * a TPM reset starts a new epoch), and BMC_TPM/BMC_STATE when the TPM cannot be read or
 * the list cannot be written (the anchor then stays pending).
 */
export async function settlePendingAnchor(tpm: BmcTpm, log: AnchorLog): Promise<Settlement> {
  const p = log.pending;
  if (!p) return 'none';
  const clock = (await tpm.readClock()).clockInfo;
  const current = await tpm.readPcr(p.pcr);
  const anchor = Buffer.from(p.anchor, 'hex');
  const before = valuesBefore(log.list(), p);
  if (before.some((b) => extendPcrValue(Alg.SHA256, b, anchor).equals(current))) {
    // Extended in the epoch it was recorded in (the PCR has kept it since), so the
    // entry carries that epoch's counters, as a verifier selects entries by them.
    log.recordExtended({ ...p, pcrValue: current.toString('hex') });
    return 'extended';
  }
  const sameEpoch = clock.resetCount === p.resetCount && clock.restartCount === p.restartCount;
  if (!sameEpoch) {
    // The PCR value of the pending anchor's epoch is gone. Dropping it agrees with every
    // quote of that epoch: anchors are extended and recorded under one lock that quotes
    // also take, so no quote was made after its extend; and it was never acknowledged.
    log.recordDropped(`the TPM was reset or restarted (reset ${p.resetCount}→${clock.resetCount}, restart ${p.restartCount}→${clock.restartCount}) before the anchor was settled; no quote covered it`);
    return 'dropped';
  }
  if (before.some((b) => b.equals(current))) {
    log.recordDropped('the PCR does not hold it: the BMC stopped before PCR_Extend, or the TPM refused it');
    return 'dropped';
  }
  throw new BmcError('BMC_STATE', `PCR ${p.pcr} holds ${current.toString('hex')}, which is neither the value before pending anchor ${p.seq} (${before.map((b) => b.toString('hex')).join(' or ')}) `
    + `nor after it: something other than this BMC extended the PCR, or ${log.path} belongs to another TPM. Anchors and quotes stay refused until a TPM reset (a BMC reboot) starts a new epoch.`);
}

/** Anchors one 32-byte digest: settle, record pending, extend, record extended. */
export async function anchorDigest(tpm: BmcTpm, log: AnchorLog, pcr: number, digest: Buffer, hooks: AnchorFaultHooks = {}): Promise<AnchorEntry> {
  await settlePendingAnchor(tpm, log);
  const before = (await tpm.readClock()).clockInfo;
  const pending: PendingAnchor = {
    seq: log.nextSeq, time: new Date().toISOString(), anchor: digest.toString('hex'), pcr,
    resetCount: before.resetCount, restartCount: before.restartCount,
  };
  try {
    log.recordPending(pending);
  } catch (e) {
    if (!(e instanceof BmcError)) throw e;
    throw new BmcError('BMC_STATE', `anchor refused and not extended: ${e.message}`, { cause: e });
  }
  await hooks.pendingRecorded?.(pending.seq);
  try {
    await tpm.extend(pcr, digest);
  } catch (e) {
    // A TPM error response means the command did nothing; anything else (a lost
    // connection) leaves the PCR unknown, and the anchor pending until it can be read.
    if (e instanceof TpmResponseError) {
      try { log.recordDropped(`the TPM refused PCR_Extend: ${e.message}`); } catch { /* stays pending; settled from the PCR next time */ }
    }
    throw e;
  }
  await hooks.extended?.(pending.seq);
  const pcrValue = await tpm.readPcr(pcr);
  const entry: AnchorEntry = { ...pending, pcrValue: pcrValue.toString('hex') };
  try {
    log.recordExtended(entry);
  } catch (e) {
    if (!(e instanceof BmcError)) throw e;
    throw new BmcError('BMC_STATE', `anchor ${entry.seq} was extended into PCR ${pcr} but could not be recorded as extended (${e.message}); `
      + 'it stays pending and is settled from the PCR before the next anchor or at the next start', { cause: e });
  }
  return entry;
}

/**
 * Whether the extended anchors of the current reset epoch replay to the PCR's value now
 * (with nothing pending). Returns the reason when they do not: the PCR was extended by
 * something other than this BMC, or the list belongs to another TPM, and no quote of
 * it may be given, because a verifier could not tell a forged history from ours.
 */
export async function explainPcr(tpm: BmcTpm, log: AnchorLog, pcr: number): Promise<string | undefined> {
  const clock = (await tpm.readClock()).clockInfo;
  const current = await tpm.readPcr(pcr);
  const resetValues = [Buffer.alloc(32, 0), Buffer.alloc(32, 0xff)];
  const list = log.list().filter((e) => e.pcr === pcr);
  // The entries of the current reset epoch: the PCR's history since its last reset value.
  let first = list.length;
  while (first > 0 && (list[first - 1] as AnchorEntry).resetCount === clock.resetCount) first--;
  const epoch = list.slice(first);
  let possible: Buffer[] = resetValues;
  let restart: number | undefined;
  for (const e of epoch) {
    // A TPM Restart (another restartCount, same resetCount) resets PCRs; a Resume keeps them.
    if (restart !== undefined && e.restartCount !== restart) possible = [...possible, ...resetValues];
    const after = Buffer.from(e.pcrValue, 'hex');
    if (!possible.some((b) => extendPcrValue(Alg.SHA256, b, Buffer.from(e.anchor, 'hex')).equals(after))) {
      return `the anchor list ${log.path} does not replay to PCR ${pcr}: anchor ${e.seq} records ${e.pcrValue}, which is not the extend of its anchor onto the value before it; `
        + 'the list was altered or belongs to another TPM. Anchors and quotes are refused; move the state directory away and re-enrol, or restore the right list.';
    }
    possible = [after];
    restart = e.restartCount;
  }
  if (restart !== undefined && clock.restartCount !== restart) possible = [...possible, ...resetValues];
  if (possible.some((b) => b.equals(current))) return undefined;
  const last = epoch.at(-1);
  return `the anchor list ${log.path} does not replay to PCR ${pcr}: the PCR holds ${current.toString('hex')}, but `
    + (last ? `the list's last anchor of this TPM epoch (reset ${clock.resetCount}) is ${last.seq}, after which it held ${last.pcrValue}` : `the list has no anchor in this TPM epoch (reset ${clock.resetCount}), so it should hold its reset value`)
    + '; something other than this BMC extended the PCR, or the list belongs to another TPM. Anchors and quotes are refused until the TPM is reset (a new epoch) or the right list is restored.';
}
