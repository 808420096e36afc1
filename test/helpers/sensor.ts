// The kernel side without the agent: the BPF sensor configured as src/agent/agent.ts
// configures it, its ring buffer drained and decoded, and the exec records of one
// container picked out. For record fields the agent does not (yet) write into its events.
import { spawnSync } from 'node:child_process';
import { decodeBatch, type DecodeError, type RawRecord } from '../../src/events/index.js';
import { BpfSensor, RingBufferDrain, hostNamespace } from '../../src/sensor/index.js';
import { detectCgroupHierarchy } from '../../src/containers/index.js';
import { docker, uniqueName } from './host.js';

export type ExecRecord = Extract<RawRecord, { kind: 'exec' }>;

export interface SensorWatch {
  /** Detaches the programs, drains what the kernel queued, closes the sensor: every record decoded. */
  stop(): Promise<{ records: RawRecord[]; errors: DecodeError[] }>;
}

/** Loads and attaches the given objects (default: the process life-cycle programs only) and switches them on. */
export function watchSensor(objects: string[] = ['process.bpf.o']): SensorWatch {
  const sensor = BpfSensor.open({ objects });
  const records: RawRecord[] = [];
  const errors: DecodeError[] = [];
  let drain: RingBufferDrain;
  try {
    drain = new RingBufferDrain(sensor.ringBufferFd, (buf) => decodeBatch(buf, (r) => records.push(r), (e) => errors.push(e)));
    sensor.configure({
      hostMountNs: hostNamespace('mnt'),
      cgroupMode: detectCgroupHierarchy().mode,
      pathFilter: true,
      portFilter: false,
      capabilityDedup: true,
      countSyscalls: false,
      captureEnvironment: false,
    });
  } catch (e) {
    sensor.close();
    throw e;
  }
  let stopped = false;
  return {
    async stop() {
      if (!stopped) {
        stopped = true;
        sensor.detach();
        try {
          await drain.stop();
        } finally {
          sensor.close();
        }
      }
      return { records, errors };
    },
  };
}

export interface SensorRun {
  id: string;
  exitCode: number;
  logs: string;
  /** The container's exec records (the runtime's set-up left out), in kernel order. */
  execs: ExecRecord[];
  errors: DecodeError[];
}

/**
 * Runs `sh -c script` in a fresh container (detached, dockerArgs before the image) under
 * a sensor of its own, to its end. The container's records are those under the container
 * key of its entrypoint's exec (the script carries a marker, so no other container's
 * exec can be taken for it).
 */
export async function runUnderSensor(image: string, script: string, dockerArgs: string[] = []): Promise<SensorRun> {
  const marker = uniqueName('vigil-sensor');
  const full = `: ${marker}; ${script}`;
  const watch = watchSensor();
  let id = '';
  let exitCode = -1;
  let logs = '';
  try {
    id = docker('run', '-d', '--pull', 'never', ...dockerArgs, '--name', marker, image, 'sh', '-c', full);
    exitCode = Number(docker('wait', marker));
    const out = spawnSync('docker', ['logs', marker], { encoding: 'utf8' });
    logs = `${out.stdout}${out.stderr}`;
  } finally {
    spawnSync('docker', ['rm', '-f', marker], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
  }
  const { records, errors } = await watch.stop();
  const execs = records.filter((r): r is ExecRecord => r.kind === 'exec' && !r.task.containerSetup);
  const init = execs.find((r) => r.argv.length === 3 && r.argv[0] === 'sh' && r.argv[1] === '-c' && r.argv[2] === full);
  if (!init) throw new Error(`no exec record of the container's entrypoint among ${execs.length} exec records: ${JSON.stringify(execs.map((r) => r.argv))}`);
  return { id, exitCode, logs, execs: execs.filter((r) => r.task.containerKey === init.task.containerKey), errors };
}
