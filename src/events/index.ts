export type { ContainerRef, EventKind, ProcessRef, RawRecord, TaskContext, Verdict, VigilEvent } from './model.js';
export { decodeBatch, decodeRecord, DecodeError } from './decoder.js';
export { capabilityName, capabilityNames, CAPABILITY_NAMES } from './capabilities.js';
export { renderText } from './text.js';
export * as layout from './layout.js';
