export { BpfSensor, kernelLink, kernelLinks, kernelProgram, DEFAULT_OBJECTS, OPTIONAL_OBJECTS, DEFAULT_OBJECT_DIR, hostNamespace, namespaceInode, possibleCpuCount } from './loader.js';
export type { SensorOptions, CgroupMode, KernelConfig, ProgramInfo, AttachmentInfo, KernelLink, KernelProgram, ContainerLoss, LossSnapshot, BudgetSettings, ControlMapChange } from './loader.js';
export { RingBufferDrain } from './drain.js';
export type { BatchHandler, DrainOptions } from './drain.js';
export { SensorError } from './errors.js';
export type { SensorErrorCode } from './errors.js';
export { checkHost, effectiveCapabilities, kernelHasTracepoint, kernelTooOld, MIN_KERNEL } from './preflight.js';
export { probeStrongerHooks, strongerHooksLine } from './hooks.js';
export type { StrongerHooks, HookAvailability } from './hooks.js';
