// Public surface of the tamper-evident log.
export {
  HASH_SIZE, EMPTY_ROOT, MerkleProofError, CompactRange, leafHash, nodeHash, rootOf, inclusionProof, consistencyProof,
  rootFromInclusionProof, verifyInclusion, verifySubtreeInclusion, rootFromSubtreeConsistencyProof, verifySubtreeConsistency,
  rootFromConsistencyProof, verifyConsistency,
} from './merkle.js';
