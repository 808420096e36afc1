// Resolves container keys to container identities. The event path only ever calls
// lookup(), which answers from the cache at once; a miss starts resolve() in the
// background and the pipeline holds that key's events (in order) until it settles.
import type { ContainerRef } from '../events/index.js';

/** What the runtime says of a container that events do not carry, for the policy and enrichment. */
export interface ContainerFacts {
  labels: Readonly<Record<string, string>>;
  /** The writable layer's directory on the host ('' when unknown). */
  upperDir: string;
  /** The image's layer directories on the host ([] when unknown). */
  lowerDirs: readonly string[];
}
import {
  cgroupPathOfPid, containerIdFromCgroupPath, findCgroupPathByKey, keyOfCgroupPath, type CgroupHierarchy,
} from './cgroups.js';
import { DockerClient, type DockerContainerInfo } from './docker.js';

/** What a key turned out to be: a container, or a cgroup of the host. */
export type KeyIdentity = { type: 'container'; container: ContainerRef } | { type: 'host'; cgroupPath: string };

export interface ResolverOptions {
  docker?: DockerClient | null;
  /** How long a destroyed container's key stays known, for events still in flight. */
  forgetAfterMs?: number;
  log?: (msg: string) => void;
  /** Called once for each container key learned. */
  onContainer?: (key: bigint, container: ContainerRef) => void;
}

export class ContainerResolver {
  private readonly byKey = new Map<bigint, KeyIdentity>();
  private readonly pending = new Map<bigint, Promise<KeyIdentity | undefined>>();
  private readonly keysById = new Map<string, bigint>();
  /** What the runtime said of a container beyond its ref: labels and writable layer, by id. */
  private readonly factsById = new Map<string, ContainerFacts>();
  private readonly docker: DockerClient | null;
  private readonly forgetAfterMs: number;
  private readonly inspectTimeoutMs = 2000;
  private readonly log: (msg: string) => void;
  private readonly onContainer: ((key: bigint, container: ContainerRef) => void) | undefined;
  private events: { stop(): void } | undefined;

  constructor(readonly hierarchy: CgroupHierarchy, opts: ResolverOptions = {}) {
    this.docker = opts.docker === undefined ? new DockerClient() : opts.docker;
    this.forgetAfterMs = opts.forgetAfterMs ?? 30_000;
    this.log = opts.log ?? (() => {});
    this.onContainer = opts.onContainer;
  }

  /** Learns the running containers and follows the runtime's start/destroy events. */
  async start(): Promise<void> {
    if (!this.docker) return;
    this.events = this.docker.followEvents(
      (e) => {
        if (e.action === 'start') void this.learnDockerContainer(e.id).catch((err: Error) => this.log(`cannot inspect started container ${e.id.slice(0, 12)}: ${err.message}`));
        else if (e.action === 'destroy') this.forgetLater(e.id);
      },
      (err) => this.log(err.message),
    );
    let ids: string[];
    try {
      ids = await this.docker.runningContainerIds();
    } catch (err) {
      this.log(`cannot list containers (${(err as Error).message}); containers will be resolved as their events arrive`);
      return;
    }
    await Promise.all(ids.map((id) => this.learnDockerContainer(id).catch((err: Error) => this.log(`cannot inspect container ${id.slice(0, 12)}: ${err.message}`))));
  }

  stop(): void {
    this.events?.stop();
  }

  /** The cached identity of a key, without waiting. */
  /** Labels and writable layer of a container the runtime described (undefined for others). */
  facts(id: string): ContainerFacts | undefined {
    return this.factsById.get(id);
  }

  lookup(key: bigint): KeyIdentity | undefined {
    return this.byKey.get(key);
  }

  /**
   * Finds what a key is: through the process's /proc entry when it still lives, else
   * by walking the cgroup hierarchy. Undefined when the cgroup is gone already.
   */
  resolve(key: bigint, pidHint: number): Promise<KeyIdentity | undefined> {
    const known = this.byKey.get(key);
    if (known) return Promise.resolve(known);
    let p = this.pending.get(key);
    if (!p) {
      p = this.resolveUncached(key, pidHint).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async resolveUncached(key: bigint, pid: number): Promise<KeyIdentity | undefined> {
    let path = cgroupPathOfPid(this.hierarchy, pid);
    if (path === undefined || keyOfCgroupPath(this.hierarchy, path) !== key) path = await findCgroupPathByKey(this.hierarchy, key);
    if (path === undefined) return undefined;
    const parsed = containerIdFromCgroupPath(path);
    if (!parsed) {
      const identity: KeyIdentity = { type: 'host', cgroupPath: path };
      this.byKey.set(key, identity);
      return identity;
    }
    let container: ContainerRef = Object.freeze({ id: parsed.id, name: '', image: '', runtime: parsed.runtime });
    if (this.docker && (parsed.runtime === 'docker' || parsed.runtime === 'unknown')) {
      try {
        container = this.toRef(await this.docker.inspect(parsed.id, this.inspectTimeoutMs));
      } catch (err) {
        // The id from the cgroup is the identity that matters; name and image follow
        // when the runtime answers, so a slow daemon never holds the events back.
        this.log(`cannot inspect container ${parsed.id.slice(0, 12)} yet (${(err as Error).message}); its events carry the id until it answers`);
        this.inspectLater(key, parsed.id, 1);
      }
    }
    const identity: KeyIdentity = { type: 'container', container };
    this.remember(key, identity);
    return identity;
  }

  private inspectLater(key: bigint, id: string, attempt: number): void {
    if (!this.docker || attempt > 5) return;
    const docker = this.docker;
    setTimeout(() => {
      docker.inspect(id, this.inspectTimeoutMs).then(
        (info) => {
          const known = this.byKey.get(key);
          if (known?.type === 'container' && known.container.id === info.id) {
            this.byKey.set(key, { type: 'container', container: this.toRef(info) });
            this.onContainer?.(key, this.toRef(info));
          }
        },
        () => this.inspectLater(key, id, attempt + 1),
      );
    }, 1000 * attempt).unref();
  }

  private async learnDockerContainer(id: string): Promise<void> {
    if (!this.docker) return;
    const info = await this.docker.inspect(id);
    if (!info.running || info.pid <= 0) return;
    const path = cgroupPathOfPid(this.hierarchy, info.pid);
    if (path === undefined) return;
    const key = keyOfCgroupPath(this.hierarchy, path);
    if (key === undefined) return;
    this.remember(key, { type: 'container', container: this.toRef(info) });
  }

  private remember(key: bigint, identity: KeyIdentity): void {
    const known = this.byKey.has(key);
    this.byKey.set(key, identity);
    if (identity.type === 'container') {
      this.keysById.set(identity.container.id, key);
      if (!known) this.onContainer?.(key, identity.container);
    }
  }

  private toRef(info: DockerContainerInfo): ContainerRef {
    this.factsById.set(info.id, Object.freeze({ labels: Object.freeze({ ...info.labels }), upperDir: info.upperDir, lowerDirs: Object.freeze([...info.lowerDirs]) }));
    // Frozen: events share it and its JSON is cached (a change is a new object).
    return Object.freeze({ id: info.id, name: info.name, image: info.image, runtime: 'docker' });
  }

  private forgetLater(id: string): void {
    const key = this.keysById.get(id);
    if (key === undefined) return;
    setTimeout(() => {
      if (this.keysById.get(id) === key) {
        this.keysById.delete(id);
        this.byKey.delete(key);
        this.factsById.delete(id);
      }
    }, this.forgetAfterMs).unref();
  }
}
