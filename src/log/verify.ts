// Checks a log directory on its own, without the BMC: every entry's hash over its
// canonical bytes and the previous hash, contiguous seqs, and every seal recomputed
// (Merkle root of the entries so far, tree size, last seq, checkpoint chain). Returns
// the batches' checkpoints, for the verifier to compare with what the BMC anchored.
// The first inconsistency is thrown as a LogVerifyError that says which entry, which
// check, what was expected and what was found.
//
// Speed (bench/attest): a segment is walked as one Buffer by offsets, without a Buffer
// view, string or JSON parse per entry; the hot loop's costs are the three SHA-256 per
// entry (entry, Merkle leaf, on average one Merkle node). When the native helper
// (src/log/native) is built, runs of plain entries between seals are checked by it in one
// call, and this code only handles what it stops at (seals, the agent's own records,
// anything unusual, every failure): the messages always come from here. Segments can be
// checked in parallel (verify-parallel.ts), each from the seal that ends the one before.
import { hash as oneShot } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { CompactRange, leafHash } from './merkle.js';
import { CHAIN_SUFFIX_LENGTH, ZERO_HASH, checkpointOf, parseSealLine, type Seal } from './chain.js';
import { listSegments } from './store.js';
import { nativeChain, type NativeChain } from './native.js';

export type LogCheck = 'format' | 'modified' | 'chain' | 'missing' | 'order' | 'duplicate' | 'seal' | 'torn';

export class LogVerifyError extends Error {
  readonly code = 'LOG_VERIFY';
  constructor(readonly check: LogCheck, readonly where: string, message: string) { super(`${where}: ${message}`); this.name = 'LogVerifyError'; }
}

export interface CheckedSeal extends Seal { file: string; line: number }

/** One of the agent's own records (kind "agent"), as the summary returns those asked for. */
export interface AgentRecordFact { seq: number; what: string; json: string }

/**
 * What the verifier reads from the entries besides their chain, gathered while they are
 * checked (so no callback is needed, and parallel checking can gather them too).
 */
export interface EntryFacts {
  /** The `time` member of the last entry that starts `{"seq":N,"time":"T"`. */
  lastTime: string | undefined;
  /** The record name (syscall) of the last entry when it is one of the agent's own records. */
  lastAgent: string | undefined;
  /** The agent's records named in VerifyLogOptions.agentRecords, in log order. */
  records: AgentRecordFact[];
}

export interface LogSummary {
  entries: number;
  firstSeq: number;
  lastSeq: number;
  seals: CheckedSeal[];
  /** Entries after the last seal (not yet covered by a checkpoint). */
  unsealed: number;
  segments: number;
  facts: EntryFacts;
}

const PREFIX = Buffer.from(',"chain":{"prev":"');
const PREV_AT = PREFIX.length; // 18: the prev hex, from the cut
const HASH_AT = PREV_AT + 64 + '","hash":"'.length; // 92: the hash hex, from the cut

export interface VerifyLogOptions {
  /** Called for each entry with its seq and canonical body (without the closing brace), e.g. to collect leaves or read fields. */
  onEntry?: (seq: number, body: Buffer, hash: Buffer, where: () => string) => void;
  /** Names (syscall) of the agent's own records to return whole in summary.facts.records. */
  agentRecords?: readonly string[];
  /** false: do not use the native helper even when it is built (tests compare the two). */
  native?: boolean;
  /** Bytes read at a time (default 1 MiB; tests make pieces end mid-line). */
  chunkBytes?: number;
}

/** Where the check of a log stands between two lines: what the next line is checked against. */
export interface ChainPosition {
  /** The last entry's hash, and the 64 lowercase hex bytes the next chain.prev must repeat. */
  head: Buffer;
  headHex: Buffer;
  checkpoint: Buffer;
  range: CompactRange;
  expectSeq: number;
  batchFirst: number;
  sinceSeal: number;
  batch: number;
}

/** What the check of one or more segments gathered. */
export interface SegmentTally {
  entries: number;
  firstSeq: number;
  seals: CheckedSeal[];
  facts: EntryFacts;
}

export function genesisPosition(): ChainPosition {
  return { head: ZERO_HASH, headHex: Buffer.from(ZERO_HASH.toString('hex'), 'latin1'), checkpoint: ZERO_HASH, range: new CompactRange(), expectSeq: 1, batchFirst: 1, sinceSeal: 0, batch: 0 };
}

/** The position right after a seal line that verified: what a segment starting after it is checked from. */
export function positionAfterSeal(s: Seal): ChainPosition {
  return {
    head: Buffer.from(s.head, 'hex'), headHex: Buffer.from(s.head, 'latin1'), checkpoint: Buffer.from(s.checkpoint, 'hex'),
    range: CompactRange.restore(s.treeSize, s.range.map((h) => Buffer.from(h, 'hex'))), expectSeq: s.lastSeq + 1, batchFirst: s.lastSeq + 1, sinceSeal: 0, batch: s.batch,
  };
}

export function emptyTally(): SegmentTally { return { entries: 0, firstSeq: 0, seals: [], facts: { lastTime: undefined, lastAgent: undefined, records: [] } }; }

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const TIME = Buffer.from(',"time":"');
const HOST = Buffer.from(',"host":"');
const AGENT = Buffer.from(',"kind":"agent","syscall":"');

function same(buf: Buffer, at: number, what: Uint8Array): boolean {
  if (at + what.length > buf.length) return false;
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false;
  return true;
}

/** Whether the 32-byte hash is written as lowercase hex at buf[at..at+64). */
function hexIs(hash: Uint8Array, buf: Buffer, at: number): boolean {
  for (let i = 0; i < 32; i++) {
    const b = hash[i] as number;
    if (buf[at + 2 * i] !== HEX[b >> 4] || buf[at + 2 * i + 1] !== HEX[b & 15]) return false;
  }
  return true;
}

/**
 * The agent's record name when the entry's bytes [s, cut) are one of its own records: the
 * record's top-level members begin seq, time, host, kind "agent", syscall (renderJson's
 * order). Only that position counts: a nested object (container labels, say) that spells
 * `"kind":"agent"` is the workload's data, not the agent's word.
 */
function agentRecordAt(buf: Buffer, timeEnd: number, cut: number): string | undefined {
  if (timeEnd < 0 || !same(buf, timeEnd, HOST)) return undefined;
  let i = timeEnd + HOST.length;
  for (; i < cut; i++) {
    const c = buf[i] as number;
    if (c === 0x5c) i++; // the escaped character cannot close the string
    else if (c === 0x22) break;
  }
  if (i >= cut || !same(buf, i + 1, AGENT)) return undefined;
  const from = i + 1 + AGENT.length;
  let j = from;
  for (; j < cut; j++) { const c = buf[j] as number; if (!((c >= 0x61 && c <= 0x7a) || c === 0x2d)) break; }
  if (j === from || j >= cut || buf[j] !== 0x22) return undefined;
  return buf.toString('latin1', from, j);
}

// prev ‖ body ‖ '}' is assembled in one reusable buffer and hashed in one call (a Hash
// object with three updates per entry was most of the verifier's time).
let scratch = Buffer.alloc(64 * 1024);

/**
 * Checks the complete lines of one segment's bytes from `pos` on, advancing `pos` and
 * adding to `tally`. `last`: the segment is the log's last (only it may end in a partial
 * line). The bytes may be a piece of the segment: its first line is line `lineBase` + 1,
 * and unless `final` what follows the last newline is left for the next piece. Returns
 * the offset after the last complete line, and the number of the last line.
 */
export function verifySegmentBytes(buf: Buffer, file: string, last: boolean, pos: ChainPosition, tally: SegmentTally, opts: VerifyLogOptions = {}, lineBase = 0, final = true): { next: number; lines: number } {
  const wanted = opts.agentRecords ?? [];
  const onEntry = opts.onEntry;
  const native: NativeChain | undefined = opts.native === false || onEntry ? undefined : nativeChain();
  const { range } = pos;
  let head = pos.head;
  // The head's hex is read where it stands (the last entry's line) until the segment ends.
  let headHexBuf = pos.headHex;
  let headHexAt = 0;
  let expectSeq = pos.expectSeq;
  let sinceSeal = pos.sinceSeal;
  let batch = pos.batch;
  let batchFirst = pos.batchFirst;
  let checkpoint = pos.checkpoint;
  // The last entry that has a time: its line's offsets (the string is made once, at the end).
  let timeFrom = -1;
  let timeTo = -1;
  let lastAgent = tally.facts.lastAgent;
  let start = 0;
  let lineNo = lineBase;
  const headHexString = (): string => headHexBuf.toString('latin1', headHexAt, headHexAt + 64);
  for (;;) {
    if (native !== undefined && start < buf.length) {
      // Plain entries up to the next line that needs this code, in one call.
      const r = native.run(buf, start, { head, headHex: headHexBuf, headHexAt, expectSeq, range });
      if (r.lines > 0) {
        head = r.head;
        headHexBuf = buf;
        headHexAt = r.lastLineCut + HASH_AT;
        if (tally.entries === 0) tally.firstSeq = expectSeq;
        expectSeq += r.lines;
        sinceSeal += r.lines;
        tally.entries += r.lines;
        lineNo += r.lines;
        timeFrom = r.lastTimeFrom;
        timeTo = r.lastTimeTo;
        lastAgent = undefined; // it stops before the agent's own records
        start = r.next;
      }
    }
    const nl = buf.indexOf(10, start);
    if (nl < 0) break;
    lineNo++;
    const s = start;
    start = nl + 1;
    const n = lineNo;
    // Built only when needed: a string per line was a measurable part of the time.
    const at = (): string => `${file} line ${n}`;
    // `{"sea` starts a seal line, `{"seq` an entry: the byte tells without a string.
    if (nl - s > 9 && buf[s + 4] === 0x61) {
      const where = at();
      let seal: Seal | null;
      try { seal = parseSealLine(buf.subarray(s, nl), where); } catch (e) { throw new LogVerifyError('format', where, (e as Error).message); }
      if (seal) {
        const sl = seal;
        const fail = (what: string, expected: string | number, found: string | number): never => {
          throw new LogVerifyError('seal', where, `seal of batch ${sl.batch}: ${what} is ${found}, expected ${expected} from the entries`);
        };
        if (seal.batch !== batch + 1) fail('the batch number', batch + 1, seal.batch);
        if (sinceSeal === 0) fail('the batch size', '≥ 1 entry', 0);
        if (seal.firstSeq !== batchFirst) fail('firstSeq', batchFirst, seal.firstSeq);
        if (seal.lastSeq !== expectSeq - 1) fail('lastSeq', expectSeq - 1, seal.lastSeq);
        if (seal.treeSize !== range.size) fail('treeSize', range.size, seal.treeSize);
        const rootBuf = range.root();
        const root = rootBuf.toString('hex');
        if (seal.root !== root) fail('the Merkle root', root, seal.root);
        const headHex = headHexString();
        if (seal.head !== headHex) fail('the chain head', headHex, seal.head);
        if (seal.prev !== checkpoint.toString('hex')) fail('the previous checkpoint', checkpoint.toString('hex'), seal.prev);
        const cp = checkpointOf(checkpoint, rootBuf, range.size, seal.lastSeq);
        if (seal.checkpoint !== cp.toString('hex')) fail('the checkpoint', cp.toString('hex'), seal.checkpoint);
        // The subtrees a restarted writer resumes from (and a segment verified on its own
        // starts from) must be the tree's own.
        const subtrees = range.state().map((h) => h.toString('hex'));
        if (seal.range.length !== subtrees.length || seal.range.some((h, i) => h !== subtrees[i])) fail('the Merkle subtree list (range)', subtrees.join(','), seal.range.join(','));
        checkpoint = cp;
        batch = seal.batch;
        batchFirst = expectSeq;
        sinceSeal = 0;
        tally.seals.push({ ...seal, file, line: n });
        continue;
      }
    }
    const cut = nl - CHAIN_SUFFIX_LENGTH;
    if (cut - s < 8 || !same(buf, cut, PREFIX)) {
      throw new LogVerifyError('format', at(), 'is neither an entry with a chain field at its end nor a seal record');
    }
    // The seq at the start of the entry's bytes (`{"seq":123,`).
    let seq = -1;
    let seqEnd = s + 7;
    if (buf[s] === 0x7b && buf[s + 1] === 0x22 && buf[s + 2] === 0x73 && buf[s + 3] === 0x65 && buf[s + 4] === 0x71 && buf[s + 5] === 0x22 && buf[s + 6] === 0x3a) {
      let v = 0;
      for (; seqEnd < cut && seqEnd < s + 7 + 16; seqEnd++) {
        const d = (buf[seqEnd] as number) - 0x30;
        if (d < 0 || d > 9) break;
        v = v * 10 + d;
      }
      if (seqEnd > s + 7 && (seqEnd >= cut || buf[seqEnd] === 0x2c || buf[seqEnd] === 0x7d)) seq = v;
    }
    if (seq < 0) throw new LogVerifyError('format', at(), 'the entry does not start with its seq');
    const bodyLength = cut - s;
    if (scratch.length < bodyLength + 33) scratch = Buffer.alloc(bodyLength + 33 + 4096);
    // chain.prev is, in an unbroken chain, the previous entry's hash: compare its hex
    // bytes in place and take the binary from the previous entry; only a mismatch
    // decodes the line's own (the error messages below say which check failed).
    let linked = true;
    for (let i = 0; i < 64; i++) if (buf[cut + PREV_AT + i] !== headHexBuf[headHexAt + i]) { linked = false; break; }
    if (linked) scratch.set(head, 0);
    else { scratch.fill(0, 0, 32); scratch.write(buf.toString('latin1', cut + PREV_AT, cut + PREV_AT + 64), 0, 32, 'hex'); }
    buf.copy(scratch, 32, s, cut);
    scratch[32 + bodyLength] = 0x7d; // '}'
    const hash = oneShot('sha256', scratch.subarray(0, bodyLength + 33), 'buffer');
    // Which check fails first tells what happened: an edited entry no longer gives its
    // own hash; a removed, moved or inserted one breaks the seq order or the chain.
    if (!hexIs(hash, buf, cut + HASH_AT)) throw new LogVerifyError('modified', at(), `entry seq ${seq} was modified: its bytes hash to ${hash.toString('hex')}, its chain.hash is ${buf.toString('latin1', cut + HASH_AT, cut + HASH_AT + 64)}`);
    if (seq !== expectSeq) {
      const where = at();
      if (seq > expectSeq) throw new LogVerifyError('missing', where, `entr${seq - expectSeq === 1 ? 'y' : 'ies'} seq ${expectSeq}${seq - expectSeq > 1 ? `..${seq - 1}` : ''} missing: seq ${seq} follows seq ${expectSeq - 1}`);
      if (seq === expectSeq - 1) throw new LogVerifyError('duplicate', where, `a second entry seq ${seq}: an entry was inserted (its chain.prev ${linked ? 'matches' : 'does not match'} the previous entry's hash)`);
      throw new LogVerifyError('order', where, `entries out of order: seq ${seq} after seq ${expectSeq - 1}`);
    }
    if (!linked) throw new LogVerifyError('chain', at(), `entry seq ${seq} does not follow the previous entry: chain.prev is ${buf.toString('latin1', cut + PREV_AT, cut + PREV_AT + 64)}, the previous entry's hash is ${headHexString()} (an entry before it was replaced, or this one was forged)`);
    if (tally.entries === 0) tally.firstSeq = seq;
    // Facts: the time (`{"seq":N,"time":"digits"`), and whether it is an agent record.
    let timeEnd = -1;
    if (buf[seqEnd] === 0x2c && same(buf, seqEnd, TIME)) {
      let j = seqEnd + TIME.length;
      const from = j;
      while (j < cut && (buf[j] as number) >= 0x30 && (buf[j] as number) <= 0x39) j++;
      if (j > from && j < cut && buf[j] === 0x22) { timeFrom = from; timeTo = j; timeEnd = j + 1; }
    }
    const what = agentRecordAt(buf, timeEnd, cut);
    lastAgent = what;
    if (what !== undefined && wanted.includes(what)) tally.facts.records.push({ seq, what, json: `${buf.toString('utf8', s, cut)}}` });
    onEntry?.(seq, buf.subarray(s, cut), hash, at);
    range.append(leafHash(hash));
    head = hash;
    headHexBuf = buf;
    headHexAt = cut + HASH_AT;
    expectSeq++;
    tally.entries++;
    sinceSeal++;
  }
  // A partial line is only ever the tail of the last segment after a crash.
  if (final && start < buf.length && !last) throw new LogVerifyError('torn', `${file}`, `ends in a partial line (${buf.length - start} bytes) but is not the last segment`);
  if (timeFrom >= 0) tally.facts.lastTime = buf.toString('latin1', timeFrom, timeTo);
  tally.facts.lastAgent = lastAgent;
  pos.head = head;
  pos.headHex = headHexBuf === pos.headHex && headHexAt === 0 ? pos.headHex : Buffer.from(headHexBuf.subarray(headHexAt, headHexAt + 64));
  pos.expectSeq = expectSeq;
  pos.sinceSeal = sinceSeal;
  pos.batch = batch;
  pos.batchFirst = batchFirst;
  pos.checkpoint = checkpoint;
  return { next: start, lines: lineNo };
}

export function summaryOf(pos: ChainPosition, tally: SegmentTally, segments: number): LogSummary {
  return { entries: tally.entries, firstSeq: tally.firstSeq, lastSeq: pos.expectSeq - 1, seals: tally.seals, unsealed: pos.sinceSeal, segments, facts: tally.facts };
}

/** Bytes read at a time (VerifyLogOptions.chunkBytes): a piece that stays in the CPU's cache
 * while it is copied in and hashed costs about a third less than one the size of a segment. */
const CHUNK_BYTES = 1024 * 1024;
const chunks = new Map<number, Buffer>();

/**
 * Checks one segment file, read a piece at a time into a buffer this thread reuses (a line
 * longer than a piece grows it). With onEntry the file is read whole: the callback may keep
 * views of the bytes.
 */
export function verifySegmentFile(path: string, last: boolean, pos: ChainPosition, tally: SegmentTally, opts: VerifyLogOptions = {}): void {
  const file = basename(path);
  if (opts.onEntry) { verifySegmentBytes(readFileSync(path), file, last, pos, tally, opts); return; }
  const size = opts.chunkBytes ?? CHUNK_BYTES;
  let buf = chunks.get(size) ?? Buffer.allocUnsafe(size);
  chunks.set(size, buf);
  const fd = openSync(path, 'r');
  try {
    let have = 0;
    let lineBase = 0;
    for (;;) {
      if (have === buf.length) {
        // No newline in a whole piece: a longer line.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const n = readSync(fd, buf, have, buf.length - have, null);
      if (n === 0) break;
      have += n;
      const { next, lines } = verifySegmentBytes(buf.subarray(0, have), file, last, pos, tally, opts, lineBase, false);
      lineBase = lines;
      buf.copy(buf, 0, next, have);
      have -= next;
    }
    verifySegmentBytes(buf.subarray(0, have), file, last, pos, tally, opts, lineBase, true);
  } finally { closeSync(fd); }
}

/** Checks the whole log directory in this thread (verifyLogDirParallel spreads it over threads). */
export function verifyLogDir(dir: string, opts: VerifyLogOptions = {}): LogSummary {
  const segments = listSegments(dir);
  const pos = genesisPosition();
  const tally = emptyTally();
  segments.forEach((seg, i) => verifySegmentFile(seg.path, i === segments.length - 1, pos, tally, opts));
  return summaryOf(pos, tally, segments.length);
}
