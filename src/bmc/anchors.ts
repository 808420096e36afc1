// The durable anchor list: one JSON object per line, appended and fsync'd. The PCR is the
// tamper-evident record; this list explains it, so a verifier can replay the anchors of
// a TPM reset epoch to the quoted value.
//
// The list is a write-ahead log for the PCR. An anchor is first recorded as pending
// (durable before the TPM sees it), then extended, then recorded as extended. A crash
// anywhere leaves either nothing, or a pending record that the next start settles by
// reading the PCR (see anchoring.ts). So the PCR never holds an anchor the list lacks.
//
// Lines on disk, in order:
//   {"state":"pending", seq, time, anchor, pcr, resetCount, restartCount}   about to extend
//   AnchorEntry (no "state")                                                  extended: in the PCR
//   {"state":"dropped", seq, anchor, reason}                                  never extended
// A file written before pending records existed holds AnchorEntry lines only, and reads
// the same.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { BmcError } from './errors.js';

export interface AnchorEntry {
  /** 1, 2, 3, ... in append order, across TPM resets. */
  seq: number;
  /** ISO time the BMC recorded it, just before extending it. */
  time: string;
  /** The 32-byte anchor value (hex) the host sent, extended as-is into the PCR. */
  anchor: string;
  pcr: number;
  /** PCR value (hex, SHA-256 bank) right after this extend. */
  pcrValue: string;
  /** TPM reset and restart counters at the time of the extend: the PCR epoch. */
  resetCount: number;
  restartCount: number;
}

/** An anchor recorded before it is extended; the counters are the TPM's just before. */
export type PendingAnchor = Omit<AnchorEntry, 'pcrValue'>;

/** Whether `v` has the shape of an AnchorEntry (used on the file and on API responses). */
export function isAnchorEntry(v: unknown): v is AnchorEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.seq === 'number' && typeof o.time === 'string' && typeof o.anchor === 'string' && typeof o.pcr === 'number'
    && typeof o.pcrValue === 'string' && typeof o.resetCount === 'number' && typeof o.restartCount === 'number';
}

function isPending(o: Record<string, unknown>): boolean {
  return o.state === 'pending' && typeof o.seq === 'number' && typeof o.time === 'string' && typeof o.anchor === 'string'
    && typeof o.pcr === 'number' && typeof o.resetCount === 'number' && typeof o.restartCount === 'number';
}

/** Where a durable write can be interrupted, for tests that simulate a crash there. */
export interface AnchorLogOptions {
  /** Test-only: called with each line just before it is written; throwing fails that write. */
  beforeWrite?: (line: string) => void;
}

export class AnchorLog {
  private readonly entries: AnchorEntry[] = [];
  private pendingAnchor: PendingAnchor | undefined;
  private fd: number;
  /** Bytes of complete lines in the file: where a failed write is cut back to. */
  private size: number;
  /** Set when a failed write could not be undone: the file may end in a partial line. */
  private broken: string | undefined;

  /**
   * Opens (creating) the list. A torn last line, left by a crash in the middle of a
   * write, is cut off: nothing acted on it (the TPM is extended only after the pending
   * line is complete and fsync'd).
   */
  constructor(readonly path: string, private readonly options: AnchorLogOptions = {}) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const lastNewline = text.lastIndexOf('\n');
    const complete = lastNewline < 0 ? '' : text.slice(0, lastNewline + 1);
    const torn = text.length !== complete.length;
    let lineNo = 0;
    for (const line of complete.split('\n')) {
      lineNo++;
      if (line.trim() === '') continue;
      let v: unknown;
      try { v = JSON.parse(line); } catch { throw this.damaged(lineNo, 'is not JSON'); }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.damaged(lineNo, 'is not a JSON object');
      this.replayLine(v as Record<string, unknown>, lineNo);
    }
    this.fd = openSync(path, 'a+', 0o600);
    this.size = Buffer.byteLength(complete);
    if (torn) { ftruncateSync(this.fd, this.size); fsyncSync(this.fd); }
  }

  private damaged(lineNo: number, what: string): BmcError {
    return new BmcError('BMC_STATE', `${this.path} line ${lineNo} ${what}; the anchor list is damaged`);
  }

  private replayLine(o: Record<string, unknown>, lineNo: number): void {
    const p = this.pendingAnchor;
    if (o.state === 'pending') {
      if (!isPending(o)) throw this.damaged(lineNo, 'is not a pending anchor record');
      if (p) throw this.damaged(lineNo, `records anchor ${String(o.seq)} as pending while anchor ${p.seq} is still unsettled`);
      if (o.seq !== this.nextSeq) throw this.damaged(lineNo, `records anchor ${String(o.seq)} as pending where ${this.nextSeq} is next`);
      const { state: _state, ...pending } = o;
      this.pendingAnchor = pending as unknown as PendingAnchor;
    } else if (o.state === 'dropped') {
      if (!p || o.seq !== p.seq || o.anchor !== p.anchor) throw this.damaged(lineNo, `drops anchor ${String(o.seq)}, which is not the pending one`);
      this.pendingAnchor = undefined;
    } else if (o.state === undefined) {
      if (!isAnchorEntry(o)) throw this.damaged(lineNo, 'is not an anchor entry');
      if (p && (o.seq !== p.seq || o.anchor !== p.anchor)) throw this.damaged(lineNo, `records anchor ${o.seq} as extended while anchor ${p.seq} is pending`);
      this.entries.push(o);
      this.pendingAnchor = undefined;
    } else {
      throw this.damaged(lineNo, `has an unknown state ${JSON.stringify(o.state)}`);
    }
  }

  get length(): number { return this.entries.length; }
  /** The seq the next anchor gets (a dropped anchor's seq is used again, so extended entries stay 1, 2, 3, ...). */
  get nextSeq(): number { return (this.entries[this.entries.length - 1]?.seq ?? 0) + 1; }
  /** The extended anchors, in order: what replays to the PCR. */
  list(): readonly AnchorEntry[] { return this.entries; }
  /** The anchor recorded but not yet settled as extended or dropped, if any. */
  get pending(): PendingAnchor | undefined { return this.pendingAnchor; }

  /** Durably records that `p` is about to be extended. Throws BMC_STATE if it cannot: then nothing may be extended. */
  recordPending(p: PendingAnchor): void {
    if (this.pendingAnchor) throw new BmcError('BMC_STATE', `anchor ${this.pendingAnchor.seq} is still pending in ${this.path}; it must be settled first`);
    if (p.seq !== this.nextSeq) throw new BmcError('BMC_STATE', `anchor seq ${p.seq} given where ${this.nextSeq} is next`);
    this.writeLine({ state: 'pending', ...p });
    this.pendingAnchor = { ...p };
  }

  /** Durably records that the pending anchor is in the PCR, with the value after it. */
  recordExtended(entry: AnchorEntry): void {
    const p = this.pendingAnchor;
    if (!p || p.seq !== entry.seq || p.anchor !== entry.anchor) throw new BmcError('BMC_STATE', `anchor ${entry.seq} is not the pending anchor of ${this.path}`);
    this.writeLine(entry);
    this.entries.push(entry);
    this.pendingAnchor = undefined;
  }

  /** Durably records that the pending anchor never reached the PCR. */
  recordDropped(reason: string): void {
    const p = this.pendingAnchor;
    if (!p) return;
    this.writeLine({ state: 'dropped', seq: p.seq, anchor: p.anchor, reason });
    this.pendingAnchor = undefined;
  }

  /**
   * Appends one line and fsyncs it, or throws BMC_STATE with the file's state unchanged:
   * a partly written line is cut off again, because the next line appended after it
   * would turn the fragment into a damaged line in the middle of the list.
   */
  private writeLine(record: object): void {
    if (this.fd < 0) throw new BmcError('BMC_STATE', `the anchor list ${this.path} is closed`);
    if (this.broken) throw new BmcError('BMC_STATE', `the anchor list ${this.path} is unusable until the BMC restarts: ${this.broken}`);
    const line = JSON.stringify(record) + '\n';
    const bytes = Buffer.from(line);
    try {
      this.options.beforeWrite?.(line);
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done);
      fsyncSync(this.fd);
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      try { ftruncateSync(this.fd, this.size); fsyncSync(this.fd); } catch (undo) {
        this.broken = `a failed write (${reason}) could not be cut off (${(undo as NodeJS.ErrnoException).code ?? (undo as Error).message})`;
      }
      throw new BmcError('BMC_STATE', `cannot write the anchor list ${this.path}: ${reason}`, { cause: e });
    }
    this.size += bytes.length;
  }

  close(): void { if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; } }
}
