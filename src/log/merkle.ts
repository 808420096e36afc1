// RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256 (node:crypto): leaf hash
// SHA-256(0x00 ‖ data), node hash SHA-256(0x01 ‖ left ‖ right); the tree of n leaves
// splits at the largest power of two below n. Proof generation follows RFC 9162 §2.1.3
// (PATH) and §2.1.4 (SUBPROOF); verification recomputes the root from the proof. The
// subtree variants (a subtree [start, end) with start a multiple of the smallest power of
// two ≥ end - start, as the Merkle Tree Certificates draft defines them) generalise both:
// the plain consistency proof is the subtree [0, size1) of the tree of size2.
//
// Tree arithmetic is in BigInt: indices and sizes come from outside (proof files, test
// vectors with 2^63-sized trees) and JavaScript's bit operators stop at 32 bits.
import { createHash, hash as oneShot } from 'node:crypto';

export const HASH_SIZE = 32;

export class MerkleProofError extends Error {
  readonly code = 'MERKLE_PROOF';
  constructor(message: string) { super(message); this.name = 'MerkleProofError'; }
}

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

// The common case (32-byte inputs) goes through one-shot crypto.hash over a scratch
// buffer: a Hash object per call, with three update() calls, costs about three times as
// much, and the verifier makes two of these per entry (bench/attest).
const LEAF_SCRATCH = Buffer.alloc(1 + HASH_SIZE);
const NODE_SCRATCH = Buffer.alloc(1 + 2 * HASH_SIZE);
NODE_SCRATCH[0] = 1;

export function leafHash(data: Uint8Array): Buffer {
  if (data.length === HASH_SIZE) {
    LEAF_SCRATCH.set(data, 1);
    return oneShot('sha256', LEAF_SCRATCH, 'buffer');
  }
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    NODE_SCRATCH.set(left, 1);
    NODE_SCRATCH.set(right, 1 + HASH_SIZE);
    return oneShot('sha256', NODE_SCRATCH, 'buffer');
  }
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}
/** MTH of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// ---- bit helpers over BigInt ----
function bitLength(x: bigint): number {
  let n = 0;
  while (x > 0n) { x >>= 1n; n++; }
  return n;
}
function popCount(x: bigint): number {
  let n = 0;
  while (x > 0n) { n += Number(x & 1n); x >>= 1n; }
  return n;
}
function trailingZeros(x: bigint): number {
  if (x === 0n) return 0;
  let n = 0;
  while ((x & 1n) === 0n) { x >>= 1n; n++; }
  return n;
}
/** Largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
type Int = number | bigint;
function big(v: Int, what: string): bigint {
  if (typeof v === 'number' && (!Number.isSafeInteger(v) || v < 0)) throw new MerkleProofError(`${what} ${v} is not a non-negative integer`);
  if (typeof v === 'bigint' && v < 0n) throw new MerkleProofError(`${what} ${v} is negative`);
  return BigInt(v);
}

// ---- roots and proofs from leaf hashes ----

/** The Merkle tree hash of leaf hashes [start, end) (RFC 9162 §2.1.1). */
export function rootOf(leaves: readonly Uint8Array[], start = 0, end = leaves.length): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return Buffer.from(leaves[start] as Uint8Array);
  const k = splitPoint(n);
  return nodeHash(rootOf(leaves, start, start + k), rootOf(leaves, start + k, end));
}

/** The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, size = leaves.length): Buffer[] {
  if (!(index >= 0 && index < size && size <= leaves.length)) throw new MerkleProofError(`no inclusion proof for leaf ${index} in a tree of ${size} leaves (${leaves.length} known)`);
  const path: Buffer[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const n = end - start;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) { walk(m, start, start + k); path.push(rootOf(leaves, start + k, end)); }
    else { walk(m - k, start + k, end); path.push(rootOf(leaves, start, start + k)); }
  };
  walk(index, 0, size);
  return path;
}

/** The consistency proof between the trees of the first size1 and size2 leaves (0 < size1 ≤ size2). */
export function consistencyProof(leaves: readonly Uint8Array[], size1: number, size2 = leaves.length): Buffer[] {
  if (!(size1 > 0 && size1 <= size2 && size2 <= leaves.length)) throw new MerkleProofError(`no consistency proof from size ${size1} to size ${size2} (${leaves.length} leaves known)`);
  const proof: Buffer[] = [];
  const sub = (m: number, start: number, end: number, whole: boolean): void => {
    const n = end - start;
    if (m === n) { if (!whole) proof.push(rootOf(leaves, start, end)); return; }
    const k = splitPoint(n);
    if (m <= k) { sub(m, start, start + k, whole); proof.push(rootOf(leaves, start + k, end)); }
    else { sub(m - k, start + k, end, false); proof.push(rootOf(leaves, start, start + k)); }
  };
  sub(size1, 0, size2, true);
  return proof;
}

/**
 * The root of a growing tree kept as its perfect subtrees, left to right (a compact
 * range): appending is O(log n) and the state to resume a tree is a few hashes.
 */
export class CompactRange {
  private readonly sizes: number[] = [];
  private readonly hashes: Buffer[] = [];
  size = 0;

  static restore(size: number, hashes: readonly Buffer[]): CompactRange {
    const r = new CompactRange();
    let rest = size;
    const sizes: number[] = [];
    for (let bit = 2 ** 52; bit >= 1; bit /= 2) if (rest >= bit) { sizes.push(bit); rest -= bit; }
    if (sizes.length !== hashes.length) throw new MerkleProofError(`a compact range of ${size} leaves has ${sizes.length} subtrees, not ${hashes.length}`);
    r.sizes.push(...sizes);
    r.hashes.push(...hashes.map((h) => Buffer.from(h)));
    r.size = size;
    return r;
  }

  append(leaf: Buffer): void {
    let h = leaf;
    let s = 1;
    while (this.sizes.length > 0 && this.sizes[this.sizes.length - 1] === s) {
      this.sizes.pop();
      h = nodeHash(this.hashes.pop() as Buffer, h);
      s *= 2;
    }
    this.sizes.push(s);
    this.hashes.push(h);
    this.size++;
  }

  root(): Buffer {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let r = this.hashes[this.hashes.length - 1] as Buffer;
    for (let i = this.hashes.length - 2; i >= 0; i--) r = nodeHash(this.hashes[i] as Buffer, r);
    return r;
  }

  /** The subtree roots, largest first: what restore() needs with the size. */
  state(): Buffer[] { return this.hashes.map((h) => Buffer.from(h)); }

  /** Writes the subtree roots (largest first) into `out` at `at`, 32 bytes each; returns how many. */
  writeState(out: Buffer, at: number): number {
    this.hashes.forEach((h, i) => h.copy(out, at + i * HASH_SIZE));
    return this.hashes.length;
  }

  /** Replaces the range with the tree of `size` leaves whose subtree roots are in `from` at `at` (as writeState wrote them). */
  readState(size: number, from: Buffer, at: number): void {
    this.sizes.length = 0;
    this.hashes.length = 0;
    let rest = size;
    for (let bit = 2 ** 52; bit >= 1; bit /= 2) {
      if (rest < bit) continue;
      this.hashes.push(Buffer.from(from.subarray(at + this.sizes.length * HASH_SIZE, at + (this.sizes.length + 1) * HASH_SIZE)));
      this.sizes.push(bit);
      rest -= bit;
    }
    this.size = size;
  }
}

// ---- verification ----

function checkProofHashes(proof: readonly Uint8Array[]): void {
  proof.forEach((p, i) => { if (p.length !== HASH_SIZE) throw new MerkleProofError(`proof hash ${i} has ${p.length} bytes, expected ${HASH_SIZE}`); });
}

function mismatch(what: string, computed: Uint8Array, expected: Uint8Array): never {
  throw new MerkleProofError(`${what}: the proof gives ${Buffer.from(computed).toString('hex')}, expected ${Buffer.from(expected).toString('hex')}`);
}

/** The root that an inclusion proof gives for `leaf` at `index` in a tree of `size` leaves. */
export function rootFromInclusionProof(index: Int, size: Int, leaf: Uint8Array, proof: readonly Uint8Array[]): Buffer {
  const i = big(index, 'leaf index');
  const n = big(size, 'tree size');
  if (i >= n) throw new MerkleProofError(`leaf index ${i} is not below the tree size ${n}`);
  if (leaf.length !== HASH_SIZE) throw new MerkleProofError(`leaf hash has ${leaf.length} bytes, expected ${HASH_SIZE}`);
  checkProofHashes(proof);
  // Below the level where the paths to `index` and to the last leaf part, siblings are on
  // either side (by the index's bits); above it, the path runs along the right border and
  // every sibling is a left one, one per set bit of the index up there.
  const inner = bitLength(i ^ (n - 1n));
  const border = popCount(i >> BigInt(inner));
  if (proof.length !== inner + border) throw new MerkleProofError(`the proof has ${proof.length} hashes; leaf ${i} of a tree of ${n} needs ${inner + border}`);
  let r: Buffer = Buffer.from(leaf);
  for (let level = 0; level < inner; level++) {
    const sibling = proof[level] as Uint8Array;
    r = ((i >> BigInt(level)) & 1n) === 0n ? nodeHash(r, sibling) : nodeHash(sibling, r);
  }
  for (let k = inner; k < proof.length; k++) r = nodeHash(proof[k] as Uint8Array, r);
  return r;
}

export function verifyInclusion(index: Int, size: Int, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const r = rootFromInclusionProof(index, size, leaf, proof);
  if (!r.equals(root)) mismatch(`inclusion of leaf ${index} in the tree of ${size}`, r, root);
}

/** A subtree [start, end) is one node of every tree that contains it, cut at end. */
function checkSubtree(start: bigint, end: bigint): void {
  if (start >= end) throw new MerkleProofError(`subtree [${start}, ${end}) is empty or reversed`);
  let width = 1n;
  while (width < end - start) width <<= 1n;
  if (start % width !== 0n) throw new MerkleProofError(`subtree [${start}, ${end}) does not start on a multiple of ${width}: it is not a node of the tree`);
}

export function verifySubtreeInclusion(index: Int, start: Int, end: Int, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const i = big(index, 'leaf index'); const s = big(start, 'subtree start'); const e = big(end, 'subtree end');
  checkSubtree(s, e);
  if (i < s || i >= e) throw new MerkleProofError(`leaf ${i} is outside subtree [${s}, ${e})`);
  const r = rootFromInclusionProof(i - s, e - s, leaf, proof);
  if (!r.equals(root)) mismatch(`inclusion of leaf ${i} in subtree [${s}, ${e})`, r, root);
}

/**
 * The root of the tree of `size` leaves that a subtree consistency proof gives, after
 * checking that the proof also gives `subRoot` for [start, end).
 */
export function rootFromSubtreeConsistencyProof(start: Int, end: Int, size: Int, proof: readonly Uint8Array[], subRoot: Uint8Array): Buffer {
  const s = big(start, 'subtree start'); const e = big(end, 'subtree end'); const n = big(size, 'tree size');
  checkSubtree(s, e);
  if (e > n) throw new MerkleProofError(`subtree [${s}, ${e}) ends beyond the tree size ${n}`);
  checkProofHashes(proof);
  if (s === 0n && e === n) {
    if (proof.length > 0) throw new MerkleProofError(`the subtree is the whole tree, yet the proof has ${proof.length} hashes`);
    return Buffer.from(subRoot);
  }
  if (proof.length === 0) throw new MerkleProofError('empty proof');
  // The subtree sits under one node at level h (index s >> h). In the tree of `size`
  // that node has grown to cover [s, min(s + 2^h, n)); the proof first rebuilds the
  // subtree's own root and the grown node's from the same hashes, then is the inclusion
  // proof of the grown node among the level-h nodes of the big tree.
  const h = bitLength((e - 1n) ^ s);
  const nodeIndex = s >> BigInt(h);
  const nodesAtH = ((n - 1n) >> BigInt(h)) + 1n;
  if (e === n) {
    // The subtree is on the right border: it is its own grown node.
    return rootFromInclusionProof(nodeIndex, nodesAtH, Buffer.from(subRoot), proof);
  }
  // Rebuild from the subtree's rightmost perfect part upwards (level `low`); the lowest
  // level where end-1 and size-1 part is `fork`: below it the grown node has right
  // siblings the subtree lacks.
  const low = trailingZeros(e - s);
  const fork = bitLength((e - 1n) ^ (n - 1n));
  let k = 0;
  let own: Buffer<ArrayBufferLike>;
  if (e - s === 1n << BigInt(low)) own = Buffer.from(subRoot); // a perfect subtree: its root is known
  else own = Buffer.from(proof[k++] as Uint8Array);
  let grown = own;
  let expected = k;
  for (let level = low; level < h; level++) {
    if ((((e - 1n) >> BigInt(level)) & 1n) === 1n || level < fork) expected++;
  }
  const inclusionLength = bitLength(nodeIndex ^ (nodesAtH - 1n)) + popCount(nodeIndex >> BigInt(bitLength(nodeIndex ^ (nodesAtH - 1n))));
  if (proof.length !== expected + inclusionLength) throw new MerkleProofError(`the proof has ${proof.length} hashes; subtree [${s}, ${e}) of a tree of ${n} needs ${expected + inclusionLength}`);
  for (let level = low; level < h; level++) {
    if ((((e - 1n) >> BigInt(level)) & 1n) === 1n) {
      const left = proof[k++] as Uint8Array;
      own = nodeHash(left, own);
      grown = nodeHash(left, grown);
    } else if (level < fork) {
      grown = nodeHash(grown, proof[k++] as Uint8Array);
    }
  }
  if (!own.equals(subRoot)) mismatch(`subtree [${s}, ${e}) root`, own, subRoot);
  return rootFromInclusionProof(nodeIndex, nodesAtH, grown, proof.slice(k));
}

export function verifySubtreeConsistency(start: Int, end: Int, size: Int, proof: readonly Uint8Array[], subRoot: Uint8Array, root: Uint8Array): void {
  const s = big(start, 'subtree start'); const e = big(end, 'subtree end'); const n = big(size, 'tree size');
  if (s === e) {
    // The empty subtree is in every tree: only its own root (MTH of nothing) is checked.
    if (e > n) throw new MerkleProofError(`empty subtree at ${s} lies beyond the tree size ${n}`);
    if (proof.length > 0) throw new MerkleProofError(`the subtree is empty, yet the proof has ${proof.length} hashes`);
    if (!EMPTY_ROOT.equals(subRoot)) mismatch('empty subtree root', subRoot, EMPTY_ROOT);
    return;
  }
  const r = rootFromSubtreeConsistencyProof(s, e, n, proof, subRoot);
  if (!r.equals(root)) mismatch(`consistency of subtree [${s}, ${e}) with the tree of ${n}`, r, root);
}

/** The root of the tree of size2 that a consistency proof from (size1, root1) gives. */
export function rootFromConsistencyProof(size1: Int, size2: Int, proof: readonly Uint8Array[], root1: Uint8Array): Buffer {
  const m = big(size1, 'size1'); const n = big(size2, 'size2');
  if (n < m) throw new MerkleProofError(`size2 ${n} is below size1 ${m}`);
  if (m === 0n) throw new MerkleProofError('a consistency proof from the empty tree proves nothing');
  if (m === n) {
    if (proof.length > 0) throw new MerkleProofError(`size1 equals size2, yet the proof has ${proof.length} hashes`);
    return Buffer.from(root1);
  }
  if (proof.length === 0) throw new MerkleProofError('empty proof');
  return rootFromSubtreeConsistencyProof(0n, m, n, proof, root1);
}

export function verifyConsistency(size1: Int, size2: Int, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  const r = rootFromConsistencyProof(size1, size2, proof, root1);
  if (!r.equals(root2)) mismatch(`consistency from size ${size1} to ${size2}`, r, root2);
}
