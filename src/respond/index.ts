// Countermeasures: kill a process from user space, pause/stop/kill/isolate a container
// through its runtime, behind safety rails; the agent's control socket. docs/respond.md.
export { Responder, actingRule } from './responder.js';
export type { ContainerAction, ResponderOptions, ResponseRecordAbout } from './responder.js';
export { DockerActions } from './docker-actions.js';
export type { ContainerState } from './docker-actions.js';
export { killProcess } from './process-kill.js';
export type { KillResult, KillTarget } from './process-kill.js';
export { DEFAULT_RESPOND, DEFAULT_SOCKET, parseRespondConfig, RespondConfigError } from './config.js';
export type { RateLimit, RespondConfig } from './config.js';
export { Protection, RateLimiter, ownContainerId } from './rails.js';
export { startControlServer, requestAction, parseRequest, tokenPathOf, CONTROL_ACTIONS } from './control.js';
export type { ControlRequest, ControlServer } from './control.js';
