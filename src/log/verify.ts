// Checks a log directory on its own, without the BMC: every entry's hash over its
// canonical bytes and the previous hash, contiguous seqs, and every seal recomputed
// (Merkle root of the entries so far, tree size, last seq, checkpoint chain). Returns
// the batches' checkpoints, for the verifier to compare with what the BMC anchored.
// The first inconsistency is thrown as a LogVerifyError that says which entry, which
// check, what was expected and what was found.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CompactRange, leafHash } from './merkle.js';
import { CHAIN_SUFFIX_LENGTH, ZERO_HASH, checkpointOf, parseSealLine, seqOf, type Seal } from './chain.js';
import { forEachLine, listSegments } from './store.js';

export type LogCheck = 'format' | 'modified' | 'chain' | 'missing' | 'order' | 'duplicate' | 'seal' | 'torn';

export class LogVerifyError extends Error {
  readonly code = 'LOG_VERIFY';
  constructor(readonly check: LogCheck, readonly where: string, message: string) { super(`${where}: ${message}`); this.name = 'LogVerifyError'; }
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

const CLOSE = Buffer.from('}');
const PREFIX = Buffer.from(',"chain":{"prev":"');

export interface VerifyLogOptions {
  /** Called for each entry with its seq and canonical body (without the closing brace), e.g. to collect leaves or read fields. */
  onEntry?: (seq: number, body: Buffer, hash: Buffer, where: string) => void;
}

export function verifyLogDir(dir: string, opts: VerifyLogOptions = {}): LogSummary {
  const segments = listSegments(dir);
  const range = new CompactRange();
  let headHex = ZERO_HASH.toString('hex');
  let checkpoint: Buffer = ZERO_HASH;
  let expectSeq = 1;
  let firstSeq = 0;
  let batchFirst = 1;
  let entries = 0;
  let sinceSeal = 0;
  let batch = 0;
  const seals: CheckedSeal[] = [];
  for (const seg of segments) {
    const file = basename(seg.path);
    const buf = readFileSync(seg.path);
    const end = forEachLine(buf, (line, lineNo) => {
      const where = `${file} line ${lineNo}`;
      const seal = (() => {
        try { return parseSealLine(line, where); } catch (e) { throw new LogVerifyError('format', where, (e as Error).message); }
      })();
      if (seal) {
        const fail = (what: string, expected: string | number, found: string | number): never => {
          throw new LogVerifyError('seal', where, `seal of batch ${seal.batch}: ${what} is ${found}, expected ${expected} from the entries`);
        };
        if (seal.batch !== batch + 1) fail('the batch number', batch + 1, seal.batch);
        if (sinceSeal === 0) fail('the batch size', '≥ 1 entry', 0);
        if (seal.firstSeq !== batchFirst) fail('firstSeq', batchFirst, seal.firstSeq);
        if (seal.lastSeq !== expectSeq - 1) fail('lastSeq', expectSeq - 1, seal.lastSeq);
        if (seal.treeSize !== range.size) fail('treeSize', range.size, seal.treeSize);
        const root = range.root().toString('hex');
        if (seal.root !== root) fail('the Merkle root', root, seal.root);
        if (seal.head !== headHex) fail('the chain head', headHex, seal.head);
        if (seal.prev !== checkpoint.toString('hex')) fail('the previous checkpoint', checkpoint.toString('hex'), seal.prev);
        const cp = checkpointOf(checkpoint, range.root(), range.size, seal.lastSeq);
        if (seal.checkpoint !== cp.toString('hex')) fail('the checkpoint', cp.toString('hex'), seal.checkpoint);
        checkpoint = cp;
        batch = seal.batch;
        batchFirst = expectSeq;
        sinceSeal = 0;
        seals.push({ ...seal, file, line: lineNo });
        return;
      }
      const cut = line.length - CHAIN_SUFFIX_LENGTH;
      if (cut < 8 || line.compare(PREFIX, 0, PREFIX.length, cut, cut + PREFIX.length) !== 0) {
        throw new LogVerifyError('format', where, 'is neither an entry with a chain field at its end nor a seal record');
      }
      const prevHex = line.toString('latin1', cut + 18, cut + 82);
      const hashHex = line.toString('latin1', cut + 92, cut + 156);
      const body = line.subarray(0, cut);
      const seq = seqOf(body);
      if (seq === null) throw new LogVerifyError('format', where, 'the entry does not start with its seq');
      const hash = createHash('sha256').update(Buffer.from(prevHex, 'hex')).update(body).update(CLOSE).digest();
      const computed = hash.toString('hex');
      // Which check fails first tells what happened: an edited entry no longer gives its
      // own hash; a removed, moved or inserted one breaks the seq order or the chain.
      if (computed !== hashHex) throw new LogVerifyError('modified', where, `entry seq ${seq} was modified: its bytes hash to ${computed}, its chain.hash is ${hashHex}`);
      if (seq !== expectSeq) {
        if (seq > expectSeq) throw new LogVerifyError('missing', where, `entr${seq - expectSeq === 1 ? 'y' : 'ies'} seq ${expectSeq}${seq - expectSeq > 1 ? `..${seq - 1}` : ''} missing: seq ${seq} follows seq ${expectSeq - 1}`);
        if (seq === expectSeq - 1) throw new LogVerifyError('duplicate', where, `a second entry seq ${seq}: an entry was inserted (its chain.prev ${prevHex === headHex ? 'matches' : 'does not match'} the previous entry's hash)`);
        throw new LogVerifyError('order', where, `entries out of order: seq ${seq} after seq ${expectSeq - 1}`);
      }
      if (prevHex !== headHex) throw new LogVerifyError('chain', where, `entry seq ${seq} does not follow the previous entry: chain.prev is ${prevHex}, the previous entry's hash is ${headHex} (an entry before it was replaced, or this one was forged)`);
      if (entries === 0) firstSeq = seq;
      opts.onEntry?.(seq, body, hash, where);
      range.append(leafHash(hash));
      headHex = hashHex;
      expectSeq++;
      entries++;
      sinceSeal++;
    });
    if (end < buf.length) {
      // A partial line is only ever the tail of the last segment after a crash.
      if (seg !== segments[segments.length - 1]) throw new LogVerifyError('torn', `${file}`, `ends in a partial line (${buf.length - end} bytes) but is not the last segment`);
    }
  }
  return { entries, firstSeq, lastSeq: expectSeq - 1, seals, unsealed: sinceSeal, segments: segments.length };
}
