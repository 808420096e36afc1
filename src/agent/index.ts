export { Agent } from './agent.js';
export type { AgentSummary, SyscallCountsReport } from './agent.js';
export { DEFAULT_CAPTURE, parseCapture, pushCapture } from './capture.js';
export type { CaptureConfig } from './capture.js';
export { parseAgentArgs, loadConfigFile, ConfigError, DEFAULT_CONFIG, AGENT_USAGE } from './config.js';
export type { AgentConfig } from './config.js';
export { EventPipeline } from './pipeline.js';
export { openOutput, parseOutputSpec } from './outputs.js';
export type { OutputSpec, OutputFormat, EventOutput } from './outputs.js';
