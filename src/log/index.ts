// Public surface of the tamper-evident log.
export {
  HASH_SIZE, EMPTY_ROOT, MerkleProofError, CompactRange, leafHash, nodeHash, rootOf, inclusionProof, consistencyProof,
  rootFromInclusionProof, verifyInclusion, verifySubtreeInclusion, rootFromSubtreeConsistencyProof, verifySubtreeConsistency,
  rootFromConsistencyProof, verifyConsistency,
} from './merkle.js';
export {
  ZERO_HASH, CHAIN_SUFFIX_LENGTH, LogFormatError, entryHash, chainLine, parseEntryLine, recomputeHash, checkpointOf, parseSealLine, sealLine, seqOf,
  type Seal, type ParsedEntryLine,
} from './chain.js';
export { LogError, LogWriter, listSegments, segmentName, forEachLine, type LogWriterOptions, type LogEntryInput, type Recovery } from './store.js';
export { LogVerifyError, verifyLogDir, type LogCheck, type CheckedSeal, type LogSummary, type VerifyLogOptions, type EntryFacts, type AgentRecordFact } from './verify.js';
export { verifyLogDirParallel, defaultThreads, type ParallelVerifyOptions } from './verify-parallel.js';
export { nativeChain, nativeUnavailable, NATIVE_LIBRARY } from './native.js';
export { ProofError, proveInclusion, proveConsistency, parseProof, checkProof, type ProofFile, type InclusionProofFile, type ConsistencyProofFile, type ProofSeal } from './proof.js';
