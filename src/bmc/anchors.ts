// The durable anchor list: one JSON object per line, appended and fsync'd before the
// API answers. The PCR is the tamper-evident record; this list explains it, so a
// verifier can replay the anchors of the current TPM reset epoch to the quoted value.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync, ftruncateSync } from 'node:fs';
import { BmcError } from './errors.js';

export interface AnchorEntry {
  /** 1, 2, 3, ... in append order, across TPM resets. */
  seq: number;
  /** ISO time the BMC extended it. */
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

/** Whether `v` has the shape of an AnchorEntry (used on the file and on API responses). */
export function isAnchorEntry(v: unknown): v is AnchorEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.seq === 'number' && typeof o.time === 'string' && typeof o.anchor === 'string' && typeof o.pcr === 'number'
    && typeof o.pcrValue === 'string' && typeof o.resetCount === 'number' && typeof o.restartCount === 'number';
}

export class AnchorLog {
  private readonly entries: AnchorEntry[] = [];
  private fd: number;

  /**
   * Opens (creating) the list. A torn last line, left by a crash in the middle of a
   * write, is cut off: it was never acknowledged to the host.
   */
  constructor(readonly path: string) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const lastNewline = text.lastIndexOf('\n');
    const complete = lastNewline < 0 ? '' : text.slice(0, lastNewline + 1);
    const torn = text.length !== complete.length;
    let lineNo = 0;
    for (const line of complete.split('\n')) {
      lineNo++;
      if (line.trim() === '') continue;
      let v: unknown;
      try { v = JSON.parse(line); } catch { throw new BmcError('BMC_STATE', `${path} line ${lineNo} is not JSON; the anchor list is damaged`); }
      if (!isAnchorEntry(v)) throw new BmcError('BMC_STATE', `${path} line ${lineNo} is not an anchor entry`);
      this.entries.push(v);
    }
    this.fd = openSync(path, 'a+', 0o600);
    if (torn) { ftruncateSync(this.fd, Buffer.byteLength(complete)); fsyncSync(this.fd); }
  }

  get length(): number { return this.entries.length; }
  get nextSeq(): number { return (this.entries[this.entries.length - 1]?.seq ?? 0) + 1; }
  list(): readonly AnchorEntry[] { return this.entries; }

  append(entry: AnchorEntry): void {
    writeSync(this.fd, JSON.stringify(entry) + '\n');
    fsyncSync(this.fd);
    this.entries.push(entry);
  }

  close(): void { if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; } }
}
