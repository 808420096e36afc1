// The log's entry format and hash chain.
//
// Canonical bytes of an entry: the UTF-8 bytes of its JSON object exactly as the writer
// rendered it, without the `chain` member (for the agent: renderJson of the event, the
// JSON-lines output's own line). On disk the line is those bytes with their closing `}`
// replaced by `,"chain":{"prev":"<64 hex>","hash":"<64 hex>"}}` and a newline, so the
// canonical bytes are the line minus that fixed 159-byte suffix, plus `}`: no JSON
// re-serialisation is involved, and any change to any byte of the entry changes its hash.
//
//   hash = SHA-256(prev ‖ canonical bytes)      prev = the previous entry's hash (32 zero bytes first)
//   Merkle leaf data = hash                      (leaf hash SHA-256(0x00 ‖ hash), RFC 6962)
//
// A seal record closes a batch. Its checkpoint chains the batches:
//   checkpoint = SHA-256(prev checkpoint ‖ root ‖ uint64be(treeSize) ‖ uint64be(lastSeq))
// where root is the Merkle tree hash of every entry's leaf since the start of the log
// (the tree grows across batches, so consistency proofs between checkpoints exist) and
// treeSize the number of entries in it. The checkpoint is what the BMC extends into its PCR.
import { createHash } from 'node:crypto';
import { HASH_SIZE } from './merkle.js';

export const ZERO_HASH: Buffer = Buffer.alloc(HASH_SIZE);
const PREFIX = ',"chain":{"prev":"';
const MIDDLE = '","hash":"';
const END = '"}}';
/** Length of the chain suffix on disk (without the newline). */
export const CHAIN_SUFFIX_LENGTH = PREFIX.length + 64 + MIDDLE.length + 64 + END.length;
const CLOSE = Buffer.from('}');

export class LogFormatError extends Error {
  readonly code = 'LOG_FORMAT';
  constructor(message: string) { super(message); this.name = 'LogFormatError'; }
}

export function entryHash(prev: Uint8Array, canonical: Uint8Array): Buffer {
  return createHash('sha256').update(prev).update(canonical).digest();
}

/** The line written for an entry (with its newline), and its hash. */
export function chainLine(canonical: string, prev: Buffer): { line: string; hash: Buffer } {
  if (!canonical.startsWith('{"seq":') || canonical[canonical.length - 1] !== '}') throw new LogFormatError('an entry must render as one JSON object whose first member is seq');
  const hash = entryHash(prev, Buffer.from(canonical, 'utf8'));
  return { line: `${canonical.slice(0, -1)}${PREFIX}${prev.toString('hex')}${MIDDLE}${hash.toString('hex')}${END}\n`, hash };
}

export interface ParsedEntryLine {
  prev: Buffer;
  hash: Buffer;
  /** The entry's bytes before the suffix; canonical = body ‖ '}'. */
  body: Buffer;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Splits one entry line (without newline) into canonical body, prev and hash; null if it has no chain suffix. */
export function parseEntryLine(line: Buffer): ParsedEntryLine | null {
  if (line.length < CHAIN_SUFFIX_LENGTH + 1) return null;
  const cut = line.length - CHAIN_SUFFIX_LENGTH;
  const suffix = line.toString('latin1', cut);
  if (!suffix.startsWith(PREFIX) || !suffix.endsWith(END) || suffix.slice(PREFIX.length + 64, PREFIX.length + 64 + MIDDLE.length) !== MIDDLE) return null;
  const prevHex = suffix.slice(PREFIX.length, PREFIX.length + 64);
  const hashHex = suffix.slice(PREFIX.length + 64 + MIDDLE.length, PREFIX.length + 128 + MIDDLE.length);
  if (!HEX64.test(prevHex) || !HEX64.test(hashHex)) return null;
  return { prev: Buffer.from(prevHex, 'hex'), hash: Buffer.from(hashHex, 'hex'), body: line.subarray(0, cut) };
}

/** The hash an entry line's canonical bytes give with `prev`. */
export function recomputeHash(prev: Uint8Array, body: Uint8Array): Buffer {
  return createHash('sha256').update(prev).update(body).update(CLOSE).digest();
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function checkpointOf(prevCheckpoint: Uint8Array, root: Uint8Array, treeSize: number, lastSeq: number): Buffer {
  return createHash('sha256').update(prevCheckpoint).update(root).update(u64(treeSize)).update(u64(lastSeq)).digest();
}

/** A seal record: the line `{"seal":{...}}` after the batch's last entry. */
export interface Seal {
  /** 1, 2, 3... */
  batch: number;
  firstSeq: number;
  lastSeq: number;
  /** Entries in the log's Merkle tree up to here (all batches). */
  treeSize: number;
  /** Merkle tree hash of those entries (hex). */
  root: string;
  /** Previous checkpoint (hex; zeros for the first batch). */
  prev: string;
  checkpoint: string;
  /** The last entry's chain hash (hex): where the chain resumes after a restart. */
  head: string;
  /** The Merkle tree's perfect subtrees (hex, largest first): where the tree resumes. */
  range: string[];
  /** ISO time of sealing; why it was sealed. */
  time: string;
  reason: 'count' | 'time' | 'insecure' | 'stop';
}

const SEAL_KEYS = ['batch', 'firstSeq', 'lastSeq', 'treeSize', 'root', 'prev', 'checkpoint', 'head', 'range', 'time', 'reason'] as const;

/** Reads a seal line (without newline), or null when the line is not one. Throws when it claims to be a seal but is malformed. */
export function parseSealLine(line: Buffer, where: string): Seal | null {
  if (line.length < 9 || line.toString('latin1', 0, 9) !== '{"seal":{') return null;
  let v: unknown;
  try { v = JSON.parse(line.toString('utf8')); } catch { throw new LogFormatError(`${where}: a seal record that is not JSON`); }
  const s = (v as { seal?: unknown }).seal;
  if (typeof s !== 'object' || s === null) throw new LogFormatError(`${where}: a seal record without its fields`);
  const o = s as Record<string, unknown>;
  for (const k of ['batch', 'firstSeq', 'lastSeq', 'treeSize'] as const) if (!Number.isSafeInteger(o[k])) throw new LogFormatError(`${where}: seal field ${k} is not an integer`);
  for (const k of ['root', 'prev', 'checkpoint', 'head'] as const) if (typeof o[k] !== 'string' || !HEX64.test(o[k] as string)) throw new LogFormatError(`${where}: seal field ${k} is not 64 hex digits`);
  if (!Array.isArray(o.range) || !o.range.every((h) => typeof h === 'string' && HEX64.test(h))) throw new LogFormatError(`${where}: seal field range is not a list of hashes`);
  if (typeof o.time !== 'string' || typeof o.reason !== 'string') throw new LogFormatError(`${where}: seal fields time and reason must be strings`);
  const unknown = Object.keys(o).filter((k) => !(SEAL_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new LogFormatError(`${where}: seal has unknown fields ${unknown.join(', ')}`);
  return o as unknown as Seal;
}

export function sealLine(seal: Seal): string {
  const ordered: Record<string, unknown> = {};
  for (const k of SEAL_KEYS) ordered[k] = seal[k];
  return `${JSON.stringify({ seal: ordered })}\n`;
}

const SEQ = /^\{"seq":(\d{1,16})(?:[,}]|$)/;
/** The entry's seq from the start of its canonical bytes (every entry starts with it). */
export function seqOf(body: Buffer): number | null {
  const m = SEQ.exec(body.toString('latin1', 0, Math.min(body.length, 26)));
  return m ? Number(m[1]) : null;
}
