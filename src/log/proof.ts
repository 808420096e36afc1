// Proof files: one entry's inclusion under a sealed checkpoint, and the consistency of two
// checkpoints, cut from a log directory so that someone without the log can check them
// (and, with `vigil verify --proof`, check that the checkpoints are anchored in the BMC).
//
//   inclusion:   the entry's canonical bytes and chain.prev give its hash (the leaf data);
//                the audit path gives the seal's root; (prev checkpoint, root, tree size,
//                last seq) give the seal's checkpoint.
//   consistency: the RFC 6962 proof that the tree of `from` is a prefix of the tree of
//                `to`; each seal's checkpoint is recomputed from its fields.
// Both use only seals' tree sizes: a root is worth something only when a checkpoint
// binds it, and only seals' checkpoints reach the BMC.
import { HASH_SIZE, consistencyProof, inclusionProof, leafHash, rootFromInclusionProof, verifyConsistency } from './merkle.js';
import { checkpointOf, recomputeHash, type Seal } from './chain.js';
import { verifyLogDir, type CheckedSeal } from './verify.js';

export class ProofError extends Error {
  readonly code = 'LOG_PROOF';
  constructor(message: string) { super(message); this.name = 'ProofError'; }
}

/** The seal fields a proof carries (what recomputes its checkpoint). */
export interface ProofSeal { batch: number; treeSize: number; lastSeq: number; root: string; prev: string; checkpoint: string; time: string }

export interface InclusionProofFile {
  vigilProof: 'inclusion';
  seq: number;
  /** The entry's canonical JSON (its line without the chain member). */
  entry: string;
  /** chain.prev and chain.hash of the entry. */
  prev: string;
  hash: string;
  leafIndex: number;
  path: string[];
  seal: ProofSeal;
}

export interface ConsistencyProofFile {
  vigilProof: 'consistency';
  from: ProofSeal;
  to: ProofSeal;
  path: string[];
}

export type ProofFile = InclusionProofFile | ConsistencyProofFile;

function proofSeal(s: Seal): ProofSeal {
  return { batch: s.batch, treeSize: s.treeSize, lastSeq: s.lastSeq, root: s.root, prev: s.prev, checkpoint: s.checkpoint, time: s.time };
}

/** Reads (and so verifies) the whole log, keeping every leaf and each entry's bytes when asked. */
function readLog(dir: string, wantSeq?: number): { leaves: Buffer[]; seals: CheckedSeal[]; entry?: { body: Buffer; prev: Buffer; hash: Buffer } } {
  const leaves: Buffer[] = [];
  let entry: { body: Buffer; prev: Buffer; hash: Buffer } | undefined;
  let prevHash: Buffer = Buffer.alloc(HASH_SIZE);
  const summary = verifyLogDir(dir, {
    onEntry: (seq, body, hash) => {
      if (seq === wantSeq) entry = { body: Buffer.from(body), prev: prevHash, hash };
      leaves.push(leafHash(hash));
      prevHash = hash;
    },
  });
  return { leaves, seals: summary.seals, entry };
}

/** The sealed tree that `selector` names: a seal's batch number, or (default) the last seal. */
function pickSeal(seals: readonly CheckedSeal[], batch: number | undefined, dir: string): CheckedSeal {
  if (seals.length === 0) throw new ProofError(`the log in ${dir} has no seal yet: nothing to prove against`);
  if (batch === undefined) return seals[seals.length - 1] as CheckedSeal;
  const s = seals.find((x) => x.batch === batch);
  if (!s) throw new ProofError(`the log in ${dir} has no batch ${batch} (batches 1..${(seals[seals.length - 1] as CheckedSeal).batch})`);
  return s;
}

/** The inclusion proof of entry `seq` under the seal of batch `batch` (default: the last seal). */
export function proveInclusion(dir: string, seq: number, batch?: number): InclusionProofFile {
  const { leaves, seals, entry } = readLog(dir, seq);
  if (!entry) throw new ProofError(`the log in ${dir} has no entry seq ${seq} (it holds seq 1..${leaves.length})`);
  const seal = pickSeal(seals, batch, dir);
  if (seal.lastSeq < seq) {
    throw new ProofError(batch === undefined ? `entry seq ${seq} is not sealed yet (the last seal, batch ${seal.batch}, ends at seq ${seal.lastSeq})` : `entry seq ${seq} comes after batch ${seal.batch} (which ends at seq ${seal.lastSeq}): choose a later batch`);
  }
  const index = seq - 1;
  return {
    vigilProof: 'inclusion', seq, entry: `${entry.body.toString('utf8')}}`, prev: entry.prev.toString('hex'), hash: entry.hash.toString('hex'),
    leafIndex: index, path: inclusionProof(leaves, index, seal.treeSize).map((h) => h.toString('hex')), seal: proofSeal(seal),
  };
}

/** The consistency proof between the seals of batches `from` and `to` (default: the last). */
export function proveConsistency(dir: string, from: number, to?: number): ConsistencyProofFile {
  const { leaves, seals } = readLog(dir);
  const a = pickSeal(seals, from, dir);
  const b = pickSeal(seals, to, dir);
  if (a.batch > b.batch) throw new ProofError(`batch ${a.batch} comes after batch ${b.batch}: a consistency proof goes from the older checkpoint to the newer`);
  return { vigilProof: 'consistency', from: proofSeal(a), to: proofSeal(b), path: consistencyProof(leaves, a.treeSize, b.treeSize).map((h) => h.toString('hex')) };
}

const HEX64 = /^[0-9a-f]{64}$/;

function hashField(v: unknown, where: string): Buffer {
  if (typeof v !== 'string' || !HEX64.test(v)) throw new ProofError(`${where} is not 64 hex digits`);
  return Buffer.from(v, 'hex');
}
function intField(v: unknown, where: string, min = 0): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw new ProofError(`${where} is not an integer ≥ ${min}`);
  return v as number;
}
function sealField(v: unknown, where: string): ProofSeal {
  if (typeof v !== 'object' || v === null) throw new ProofError(`${where} is missing`);
  const o = v as Record<string, unknown>;
  for (const k of ['root', 'prev', 'checkpoint'] as const) hashField(o[k], `${where}.${k}`);
  intField(o.batch, `${where}.batch`, 1); intField(o.treeSize, `${where}.treeSize`, 1); intField(o.lastSeq, `${where}.lastSeq`, 1);
  if (typeof o.time !== 'string') throw new ProofError(`${where}.time is not a string`);
  return o as unknown as ProofSeal;
}

/** Parses a proof file's JSON, checking every field's type (the arithmetic is checkProof's). */
export function parseProof(text: string, where: string): ProofFile {
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new ProofError(`${where}: not JSON (${(e as Error).message})`); }
  if (typeof v !== 'object' || v === null) throw new ProofError(`${where}: not a proof object`);
  const o = v as Record<string, unknown>;
  const path = (p: unknown): string[] => {
    if (!Array.isArray(p)) throw new ProofError(`${where}: path is not a list of hashes`);
    p.forEach((h, i) => hashField(h, `${where}: path[${i}]`));
    return p as string[];
  };
  if (o.vigilProof === 'inclusion') {
    if (typeof o.entry !== 'string') throw new ProofError(`${where}: entry is not a string`);
    hashField(o.prev, `${where}: prev`); hashField(o.hash, `${where}: hash`);
    intField(o.seq, `${where}: seq`, 1); intField(o.leafIndex, `${where}: leafIndex`);
    path(o.path);
    sealField(o.seal, `${where}: seal`);
    return o as unknown as InclusionProofFile;
  }
  if (o.vigilProof === 'consistency') {
    sealField(o.from, `${where}: from`); sealField(o.to, `${where}: to`); path(o.path);
    return o as unknown as ConsistencyProofFile;
  }
  throw new ProofError(`${where}: vigilProof is ${JSON.stringify(o.vigilProof)}, expected "inclusion" or "consistency"`);
}

function checkSeal(s: ProofSeal, what: string): void {
  const cp = checkpointOf(Buffer.from(s.prev, 'hex'), Buffer.from(s.root, 'hex'), s.treeSize, s.lastSeq).toString('hex');
  if (cp !== s.checkpoint) throw new ProofError(`${what}: its fields give checkpoint ${cp}, it claims ${s.checkpoint}`);
  // The log's seqs are contiguous from 1, one leaf each: a tree of n leaves ends at seq n.
  if (s.treeSize !== s.lastSeq) throw new ProofError(`${what}: a tree of ${s.treeSize} entries must end at seq ${s.treeSize}, not ${s.lastSeq}`);
}

/** Checks a proof's arithmetic; returns the checkpoints it rests on (oldest first), for the caller to find anchored. */
export function checkProof(p: ProofFile): string[] {
  try {
    if (p.vigilProof === 'inclusion') {
      const m = /^\{"seq":(\d+)[,}]/.exec(p.entry);
      if (!m || Number(m[1]) !== p.seq) throw new ProofError(`the entry's own seq (${m?.[1] ?? 'none'}) is not the proof's seq ${p.seq}`);
      if (!p.entry.endsWith('}')) throw new ProofError('the entry is not one JSON object');
      if (p.leafIndex !== p.seq - 1) throw new ProofError(`entry seq ${p.seq} is leaf ${p.seq - 1} of the log's tree, not ${p.leafIndex}`);
      const body = Buffer.from(p.entry.slice(0, -1), 'utf8');
      const hash = recomputeHash(Buffer.from(p.prev, 'hex'), body).toString('hex');
      if (hash !== p.hash) throw new ProofError(`entry seq ${p.seq}: its bytes hash to ${hash}, the proof says ${p.hash} (the entry was modified)`);
      checkSeal(p.seal, `the seal of batch ${p.seal.batch}`);
      const root = rootFromInclusionProof(p.leafIndex, p.seal.treeSize, leafHash(Buffer.from(p.hash, 'hex')), p.path.map((h) => Buffer.from(h, 'hex'))).toString('hex');
      if (root !== p.seal.root) throw new ProofError(`entry seq ${p.seq}: the audit path gives root ${root}, the seal of batch ${p.seal.batch} has ${p.seal.root} (the entry is not in that tree)`);
      return [p.seal.checkpoint];
    }
    checkSeal(p.from, `the seal of batch ${p.from.batch}`);
    checkSeal(p.to, `the seal of batch ${p.to.batch}`);
    if (p.from.batch > p.to.batch || p.from.treeSize > p.to.treeSize) throw new ProofError(`batch ${p.from.batch} (${p.from.treeSize} entries) does not come before batch ${p.to.batch} (${p.to.treeSize} entries)`);
    verifyConsistency(p.from.treeSize, p.to.treeSize, p.path.map((h) => Buffer.from(h, 'hex')), Buffer.from(p.from.root, 'hex'), Buffer.from(p.to.root, 'hex'));
    return p.from.checkpoint === p.to.checkpoint ? [p.from.checkpoint] : [p.from.checkpoint, p.to.checkpoint];
  } catch (e) {
    if (e instanceof ProofError) throw e;
    throw new ProofError((e as Error).message);
  }
}
