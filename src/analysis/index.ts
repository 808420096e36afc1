// Image static analysis: an image (local Docker image, `docker save` archive, OCI layout)
// -> the system calls its programs can make -> an allow-list and a Docker seccomp profile.
// The agent calls analyzeImage(ref, {cacheDir}) and loads result.numbers into its kernel
// bitmap; results are cached by image id, per-file summaries by content hash.
export { analyzeImage, analyzeLoaded, buildRootFs, ANALYZER_VERSION, RUNTIME_SYSCALLS } from './analyze.js';
export type { AnalysisResult, AnalyzeOptions, SyscallSource, UnresolvedMode } from './analyze.js';
export { seccompProfile } from './seccomp.js';
export type { SeccompProfile } from './seccomp.js';
export { AnalysisError } from './errors.js';
export type { AnalysisWarning } from './errors.js';
export { loadImage, imageFromArchive } from './image.js';
export type { LoadedImage, ImageConfig } from './image.js';
export { parseElf, ElfError } from './elf.js';
export { readTar } from './tar.js';
export { RootFs } from './rootfs.js';
export { summarize } from './syscalls.js';
export type { BinarySummary } from './syscalls.js';
