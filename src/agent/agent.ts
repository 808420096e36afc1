// Wires the parts of the agent: sensor → drain worker → decoder → pipeline → outputs.
import { BpfSensor, RingBufferDrain, hostMountNamespace } from '../sensor/index.js';
import { decodeBatch, layout } from '../events/index.js';
import { ContainerResolver, DockerClient, detectCgroupHierarchy } from '../containers/index.js';
import { EventPipeline, type PipelineStats } from './pipeline.js';
import { openOutput, type EventOutput } from './outputs.js';
import type { AgentConfig } from './config.js';

const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(layout.RECORD_KIND).map(([n, v]) => [v, n.toLowerCase()]));

export interface AgentSummary extends PipelineStats { lost: number; decodeErrors: number }

export class Agent {
  private sensor: BpfSensor | undefined;
  private drain: RingBufferDrain | undefined;
  private resolver: ContainerResolver | undefined;
  private pipeline: EventPipeline | undefined;
  private outputs: EventOutput[] = [];
  private lostTimer: NodeJS.Timeout | undefined;
  private readonly lostSeen = new Map<number, bigint>();
  private decodeErrors = 0;

  constructor(private readonly config: AgentConfig, private readonly log: (msg: string) => void) {}

  async start(): Promise<void> {
    const hierarchy = detectCgroupHierarchy();
    this.sensor = BpfSensor.open({ btfPath: this.config.btfPath, ringBufferBytes: this.config.ringBufferBytes });
    this.outputs = this.config.outputs.map(openOutput);
    this.resolver = new ContainerResolver(hierarchy, { docker: new DockerClient(this.config.dockerSocket), log: (m) => this.log(m) });
    await this.resolver.start();
    const sensor = this.sensor;
    this.pipeline = new EventPipeline({
      host: this.config.host,
      resolver: this.resolver,
      emit: (e) => { for (const o of this.outputs) o.write(e); },
      ignoreKey: (key) => sensor.ignoreCgroup(key),
    });
    const pipeline = this.pipeline;
    this.drain = new RingBufferDrain(
      sensor.ringBufferFd,
      (buf) => decodeBatch(buf, (r) => pipeline.handle(r), (e) => {
        if (this.decodeErrors++ < 10) this.log(`skipped a bad record: ${e.message}`);
      }),
      {},
      (e) => this.log(e.message),
    );
    // Only now do the programs start sending: nothing is produced before a reader exists.
    sensor.configure({ hostMountNs: hostMountNamespace(), cgroupMode: hierarchy.mode });
    this.lostTimer = setInterval(() => this.reportLost(), 1000);
    this.lostTimer.unref();
  }

  /** Writes an entry for records the kernel could not queue since the last check. */
  private reportLost(): void {
    if (!this.sensor || !this.pipeline) return;
    for (const [kind, total] of this.sensor.lostCounts()) {
      const before = this.lostSeen.get(kind) ?? 0n;
      if (total > before) {
        this.lostSeen.set(kind, total);
        const e = this.pipeline.lostEvent(KIND_NAMES[kind] ?? `kind-${kind}`, total - before);
        for (const o of this.outputs) o.write(e);
        this.log(`the kernel ring buffer was full: ${total - before} ${KIND_NAMES[kind] ?? kind} records lost`);
      }
    }
  }

  /** Stops the kernel side, drains what it queued, writes out every pending event. */
  async stop(): Promise<AgentSummary> {
    if (this.lostTimer) clearInterval(this.lostTimer);
    await this.drain?.stop();
    await this.pipeline?.flush();
    this.reportLost();
    this.resolver?.stop();
    this.sensor?.close();
    await Promise.all(this.outputs.map((o) => o.close()));
    let lost = 0;
    for (const n of this.lostSeen.values()) lost += Number(n);
    const stats = this.pipeline?.stats ?? { records: 0, emitted: 0, droppedHost: 0, unresolved: 0, waiting: 0 };
    return { ...stats, lost, decodeErrors: this.decodeErrors };
  }
}
