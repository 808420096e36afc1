// Public surface of attestation: the agent's log and anchoring, and the verifier.
import { renderJson, type VigilEvent } from '../events/index.js';
import { DEFAULT_OBJECT_DIR, kernelLink, kernelProgram, type BpfSensor } from '../sensor/index.js';
import { DEFAULT_POLICY_DIR } from '../policy/index.js';
import { AgentLog, type AgentLogConfig, type ProgramWatchHandle } from './agent-log.js';
import { ProgramWatch } from './programs.js';
import { TRACING_PROG_TYPES, linkIdsAfter, linkInfo, linkTypeName, programDetail, programIdsAfter, progTypeName, whereArePrograms } from './kernel-bpf.js';
import { buildDigest, treeDigest } from './measure.js';

export { AgentLog, agentRecord, bmcClient, DEFAULT_LOG_SETTINGS, type AgentLogConfig, type AnchorSettings, type LogSettings } from './agent-log.js';
export { Anchorer, type AnchorerEvents } from './anchorer.js';
export { ProgramWatch, changeRule, describeChange, UNLINKED_GRACE_MS, type AddedProgramChange, type KernelScan, type OwnProgramChange, type ProgramChange, type ProgramProbe } from './programs.js';
export { buildDigest, treeDigest } from './measure.js';
export { verify, verifyProof, VerifyFailure, type VerifyCheck, type VerifyOptions, type VerifyResult, type ProofResult } from './verifier.js';

/** Opens the agent's log (config.log must be set); `emit` writes one of the agent's own records to every output. */
export function openAgentLog(config: AgentLogConfig, log: (m: string) => void, emit: (e: VigilEvent) => void): AgentLog {
  if (!config.log) throw new Error('openAgentLog needs config.log');
  return new AgentLog(config.log, config.anchor, { host: config.host, log, render: renderJson, emit });
}

/** The start record's self-measurement: the programs as the kernel holds them, the build, the policy files. */
export function selfMeasurement(sensor: BpfSensor, config: AgentLogConfig): Record<string, unknown> {
  const policyPaths = [...(config.defaultPolicy ? [DEFAULT_POLICY_DIR] : []), ...config.policies];
  const links = sensor.attachments().map((a) => ({ object: a.object, program: a.program, section: a.section, linkId: a.linkId, progId: a.progId }));
  return { programs: sensor.programInfo(), links, build: buildDigest(DEFAULT_OBJECT_DIR), policy: treeDigest(policyPaths, (p) => /\.ya?ml$/.test(p)) };
}

/** The re-measurement of the sensor's links after start, and the watch for programs added on its hooks (AgentLog.start's second argument). */
export function programWatch(sensor: BpfSensor): ProgramWatchHandle {
  const scan = {
    programIdsAfter, linkIdsAfter, programDetail, linkInfo, whereArePrograms, progTypeName, linkTypeName,
    isTracingType: (t: number) => TRACING_PROG_TYPES.has(t), selfPid: process.pid,
  };
  return { watch: new ProgramWatch(sensor.attachments(), { link: kernelLink, program: kernelProgram, scan }), active: () => !sensor.detached };
}
