export { Agent } from './agent.js';
export type { AgentSummary } from './agent.js';
export { parseAgentArgs, loadConfigFile, ConfigError, DEFAULT_CONFIG, AGENT_USAGE } from './config.js';
export type { AgentConfig } from './config.js';
export { EventPipeline } from './pipeline.js';
export { openOutput, parseOutputSpec } from './outputs.js';
export type { OutputSpec, OutputFormat, EventOutput } from './outputs.js';
