// The log verifier as it was before the fast path (src/log/verify.ts at 4c2a568), kept
// only as the reference that test/log/verify-fast.test.ts compares the fast verifier with:
// the same logs, edited the same ways, must give the same summary or the same first error.
// Checks a log directory on its own, without the BMC: every entry's hash over its
// canonical bytes and the previous hash, contiguous seqs, and every seal recomputed
// (Merkle root of the entries so far, tree size, last seq, checkpoint chain). Returns
// the batches' checkpoints, for the verifier to compare with what the BMC anchored.
// The first inconsistency is thrown as a LogVerifyError that says which entry, which
// check, what was expected and what was found.
import { hash as oneShot } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CompactRange, leafHash } from '../../src/log/merkle.js';
import { CHAIN_SUFFIX_LENGTH, ZERO_HASH, checkpointOf, parseSealLine, type Seal } from '../../src/log/chain.js';
import { forEachLine, listSegments } from '../../src/log/store.js';

import type { LogCheck } from '../../src/log/verify.js';

export class ReferenceLogVerifyError extends Error {
  readonly code = 'LOG_VERIFY';
  constructor(readonly check: LogCheck, readonly where: string, message: string) { super(`${where}: ${message}`); this.name = 'ReferenceLogVerifyError'; }
}

export interface CheckedSeal extends Seal { file: string; line: number }

export interface LogSummary {
  entries: number;
  firstSeq: number;
  lastSeq: number;
  seals: CheckedSeal[];
  /** Entries after the last seal (not yet covered by a checkpoint). */
  unsealed: number;
  /** Time (the entry's `time` field, ns since the epoch as a string) of the last entry per seq, when asked for. */
  segments: number;
}

const PREFIX = Buffer.from(',"chain":{"prev":"');

export interface VerifyLogOptions {
  /** Called for each entry with its seq and canonical body (without the closing brace), e.g. to collect leaves or read fields. */
  onEntry?: (seq: number, body: Buffer, hash: Buffer, where: () => string) => void;
}

/** The seq at the start of an entry's bytes (`{"seq":123,`), or -1. */
function seqOfBytes(body: Buffer): number {
  const START = 7; // {"seq":
  if (body.length < START + 2 || body[2] !== 0x73 || body[4] !== 0x71 || body[6] !== 0x3a || body[0] !== 0x7b) return -1;
  let n = 0;
  let i = START;
  for (; i < body.length && i < START + 16; i++) {
    const d = (body[i] as number) - 0x30;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === START || (i < body.length && body[i] !== 0x2c && body[i] !== 0x7d)) return -1;
  return n;
}

export function referenceVerifyLogDir(dir: string, opts: VerifyLogOptions = {}): LogSummary {
  const segments = listSegments(dir);
  const range = new CompactRange();
  // The last entry's hash, binary and as the 64 hex bytes the next chain.prev must repeat.
  let head: Buffer = ZERO_HASH;
  const headAscii = Buffer.from(ZERO_HASH.toString('hex'), 'latin1');
  let checkpoint: Buffer = ZERO_HASH;
  let expectSeq = 1;
  let firstSeq = 0;
  let batchFirst = 1;
  let entries = 0;
  let sinceSeal = 0;
  let batch = 0;
  const seals: CheckedSeal[] = [];
  // prev ‖ body ‖ '}' assembled in one reusable buffer and hashed in one call (a Hash
  // object with three updates per entry was most of the verifier's time).
  let scratch = Buffer.alloc(64 * 1024);
  for (const seg of segments) {
    const file = basename(seg.path);
    const buf = readFileSync(seg.path);
    const end = forEachLine(buf, (line, lineNo) => {
      // Built only when needed: a string per line was a measurable part of the time.
      const at = (): string => `${file} line ${lineNo}`;
      // `{"sea` starts a seal line, `{"seq` an entry: the byte tells without a string.
      const seal = line.length > 9 && line[4] === 0x61 ? (() => {
        const where = at();
        try { return parseSealLine(line, where); } catch (e) { throw new ReferenceLogVerifyError('format', where, (e as Error).message); }
      })() : null;
      if (seal) {
        const where = at();
        const fail = (what: string, expected: string | number, found: string | number): never => {
          throw new ReferenceLogVerifyError('seal', where, `seal of batch ${seal.batch}: ${what} is ${found}, expected ${expected} from the entries`);
        };
        if (seal.batch !== batch + 1) fail('the batch number', batch + 1, seal.batch);
        if (sinceSeal === 0) fail('the batch size', '≥ 1 entry', 0);
        if (seal.firstSeq !== batchFirst) fail('firstSeq', batchFirst, seal.firstSeq);
        if (seal.lastSeq !== expectSeq - 1) fail('lastSeq', expectSeq - 1, seal.lastSeq);
        if (seal.treeSize !== range.size) fail('treeSize', range.size, seal.treeSize);
        const root = range.root().toString('hex');
        if (seal.root !== root) fail('the Merkle root', root, seal.root);
        const headHex = headAscii.toString('latin1');
        if (seal.head !== headHex) fail('the chain head', headHex, seal.head);
        if (seal.prev !== checkpoint.toString('hex')) fail('the previous checkpoint', checkpoint.toString('hex'), seal.prev);
        const cp = checkpointOf(checkpoint, range.root(), range.size, seal.lastSeq);
        if (seal.checkpoint !== cp.toString('hex')) fail('the checkpoint', cp.toString('hex'), seal.checkpoint);
        // The subtrees a restarted writer resumes from (and a segment verified on its own
        // would start from) must be the tree's own.
        const subtrees = range.state().map((h) => h.toString('hex'));
        if (seal.range.length !== subtrees.length || seal.range.some((h, i) => h !== subtrees[i])) fail('the Merkle subtree list (range)', subtrees.join(','), seal.range.join(','));
        checkpoint = cp;
        batch = seal.batch;
        batchFirst = expectSeq;
        sinceSeal = 0;
        seals.push({ ...seal, file, line: lineNo });
        return;
      }
      const cut = line.length - CHAIN_SUFFIX_LENGTH;
      if (cut < 8 || line.compare(PREFIX, 0, PREFIX.length, cut, cut + PREFIX.length) !== 0) {
        throw new ReferenceLogVerifyError('format', at(), 'is neither an entry with a chain field at its end nor a seal record');
      }
      const body = line.subarray(0, cut);
      const seq = seqOfBytes(body);
      if (seq < 0) throw new ReferenceLogVerifyError('format', at(), 'the entry does not start with its seq');
      if (scratch.length < body.length + 33) scratch = Buffer.alloc(body.length + 33 + 4096);
      // chain.prev is, in an unbroken chain, the previous entry's hash: compare its hex
      // bytes in place and take the binary from the previous entry; only a mismatch
      // decodes the line's own (the error messages below say which check failed).
      const linked = line.compare(headAscii, 0, 64, cut + 18, cut + 82) === 0;
      if (linked) scratch.set(head, 0);
      else scratch.write(line.toString('latin1', cut + 18, cut + 82), 0, 32, 'hex');
      body.copy(scratch, 32);
      scratch[32 + body.length] = 0x7d; // '}'
      const hash = oneShot('sha256', scratch.subarray(0, body.length + 33), 'buffer');
      const computed = hash.toString('hex');
      const hashHex = line.toString('latin1', cut + 92, cut + 156);
      // Which check fails first tells what happened: an edited entry no longer gives its
      // own hash; a removed, moved or inserted one breaks the seq order or the chain.
      if (computed !== hashHex) throw new ReferenceLogVerifyError('modified', at(), `entry seq ${seq} was modified: its bytes hash to ${computed}, its chain.hash is ${hashHex}`);
      if (seq !== expectSeq) {
        const where = at();
        if (seq > expectSeq) throw new ReferenceLogVerifyError('missing', where, `entr${seq - expectSeq === 1 ? 'y' : 'ies'} seq ${expectSeq}${seq - expectSeq > 1 ? `..${seq - 1}` : ''} missing: seq ${seq} follows seq ${expectSeq - 1}`);
        if (seq === expectSeq - 1) throw new ReferenceLogVerifyError('duplicate', where, `a second entry seq ${seq}: an entry was inserted (its chain.prev ${linked ? 'matches' : 'does not match'} the previous entry's hash)`);
        throw new ReferenceLogVerifyError('order', where, `entries out of order: seq ${seq} after seq ${expectSeq - 1}`);
      }
      if (!linked) throw new ReferenceLogVerifyError('chain', at(), `entry seq ${seq} does not follow the previous entry: chain.prev is ${line.toString('latin1', cut + 18, cut + 82)}, the previous entry's hash is ${headAscii.toString('latin1')} (an entry before it was replaced, or this one was forged)`);
      if (entries === 0) firstSeq = seq;
      opts.onEntry?.(seq, body, hash, at);
      range.append(leafHash(hash));
      head = hash;
      line.copy(headAscii, 0, cut + 92, cut + 156);
      expectSeq++;
      entries++;
      sinceSeal++;
    });
    if (end < buf.length) {
      // A partial line is only ever the tail of the last segment after a crash.
      if (seg !== segments[segments.length - 1]) throw new ReferenceLogVerifyError('torn', `${file}`, `ends in a partial line (${buf.length - end} bytes) but is not the last segment`);
    }
  }
  return { entries, firstSeq, lastSeq: expectSeq - 1, seals, unsealed: sinceSeal, segments: segments.length };
}
