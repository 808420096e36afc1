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
  /** The id of the image the container was created from ('' when unknown): a tag can move, the id cannot. */
  imageId?: string;
}
import { readlinkSync } from 'node:fs';
import {
  cgroupPathOfPid, containerIdFromCgroupPath, findCgroupPathByKey, keyOfCgroupPath, type CgroupContainerId, type CgroupHierarchy,
} from './cgroups.js';
import { DockerApiError, DockerClient, type DockerContainerInfo } from './docker.js';

/** What a key turned out to be: a container, or a cgroup of the host. */
export type KeyIdentity = { type: 'container'; container: ContainerRef } | { type: 'host'; cgroupPath: string };

export interface ResolverOptions {
  docker?: DockerClient | null;
  /**
   * How long a destroyed container's identity (key, name, image) stays known, for its
   * records still in flight: behind a backlog they arrive long after it is gone.
   */
  forgetAfterMs?: number;
  /** Most destroyed containers remembered at once (the oldest is forgotten first). */
  maxForgotten?: number;
  log?: (msg: string) => void;
  /** Called once for each container key learned. */
  onContainer?: (key: bigint, container: ContainerRef) => void;
}

export class ContainerResolver {
  private readonly byKey = new Map<bigint, KeyIdentity>();
  private readonly pending = new Map<bigint, Promise<KeyIdentity | undefined>>();
  private readonly keysById = new Map<string, Set<bigint>>();
  /** The last ref the runtime gave of a container (inspect, or its events' attributes), by id: kept after destroy. */
  private readonly refById = new Map<string, ContainerRef>();
  /** Destroyed containers waiting to be forgotten, oldest first. */
  private readonly forgetting = new Map<string, NodeJS.Timeout>();
  private readonly maxForgotten: number;
  private readonly maxRefs = 8192;
  /** What the runtime said of a container beyond its ref: labels and writable layer, by id. */
  private readonly factsById = new Map<string, ContainerFacts>();
  private readonly docker: DockerClient | null;
  private readonly forgetAfterMs: number;
  private readonly inspectTimeoutMs = 2000;
  private readonly log: (msg: string) => void;
  private readonly onContainer: ((key: bigint, container: ContainerRef) => void) | undefined;
  private events: { stop(): void } | undefined;
  private hostPidNs: number | undefined;
  /** Cgroups found not to be containers' (each logged once with the reason): their records are dropped. */
  ignoredCgroups = 0;

  constructor(readonly hierarchy: CgroupHierarchy, opts: ResolverOptions = {}) {
    this.docker = opts.docker === undefined ? new DockerClient() : opts.docker;
    this.forgetAfterMs = opts.forgetAfterMs ?? 300_000;
    this.maxForgotten = opts.maxForgotten ?? 4096;
    this.log = opts.log ?? (() => {});
    this.onContainer = opts.onContainer;
  }

  /** Learns the running containers and follows the runtime's start/destroy events. */
  async start(): Promise<void> {
    if (!this.docker) return;
    this.events = this.docker.followEvents(
      (e) => {
        // The event names the container's name and image: known even when it is gone by
        // the time we hear (--rm, behind a backlog), before any inspect could answer.
        const { name, image } = e.attributes;
        if (name !== undefined && image !== undefined && e.action !== 'destroy') this.noteRuntimeRef(e.id, name, image);
        if (e.action === 'create') void this.inspectCreated(e.id);
        else if (e.action === 'start') void this.learnDockerContainer(e.id).catch((err: Error) => this.log(`cannot inspect started container ${e.id.slice(0, 12)}: ${err.message}`));
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
   * A cgroup was made (the kernel's cgroup record, in kernel order, before any record of
   * its tasks): when its path names a container, the key is that container from now on,
   * with the name and image the runtime gave already or, until it answers, the id alone.
   * A path that names no container teaches nothing: such keys are looked up as before.
   */
  learnCgroup(key: bigint, path: string): void {
    const parsed = containerIdFromCgroupPath(path);
    if (!parsed) return;
    const known = this.byKey.get(key);
    if (known?.type === 'container' && known.container.id === parsed.id) return;
    const ref = this.refById.get(parsed.id) ?? Object.freeze({ id: parsed.id, name: parsed.name ?? '', image: '', runtime: parsed.runtime });
    this.remember(key, { type: 'container', container: ref });
    if (ref.name === '' && this.docker && (parsed.runtime === 'docker' || parsed.runtime === 'unknown')) {
      const id = parsed.id;
      this.docker.inspect(id, this.inspectTimeoutMs).then(
        (info) => this.upgrade(info.id, this.toRef(info)),
        (err: Error) => {
          if (!isNotFound(err)) this.inspectLater(key, id, 1);
        },
      );
    }
  }

  /** What the runtime's event said of a container: kept by id, and given to its keys that lack it. */
  private noteRuntimeRef(id: string, name: string, image: string): void {
    const have = this.refById.get(id);
    if (have && have.name === name && have.image === image) return;
    this.upgrade(id, Object.freeze({ id, name, image, runtime: 'docker' }));
  }

  /** A container's fuller ref: cached by id, and every key of it known now shows it. */
  private upgrade(id: string, ref: ContainerRef): void {
    this.keepRef(ref);
    for (const key of this.keysById.get(id) ?? []) {
      const known = this.byKey.get(key);
      if (known?.type !== 'container' || known.container.id !== id) continue;
      if (known.container.name === ref.name && known.container.image === ref.image) continue;
      this.byKey.set(key, { type: 'container', container: ref });
      this.onContainer?.(key, ref);
    }
  }

  /** Caches a ref by id; bounded, the oldest evicted first (a key already showing it keeps it). */
  private keepRef(ref: ContainerRef): void {
    this.refById.delete(ref.id); // re-inserted last
    this.refById.set(ref.id, ref);
    while (this.refById.size > this.maxRefs) this.refById.delete(this.refById.keys().next().value as string);
  }

  /** A container just created: its name, image, labels and layers, before its first task runs. */
  private async inspectCreated(id: string): Promise<void> {
    if (!this.docker) return;
    try {
      const info = await this.docker.inspect(id, this.inspectTimeoutMs);
      this.upgrade(info.id, this.toRef(info));
    } catch (err) {
      if (!isNotFound(err as Error)) this.log(`cannot inspect created container ${id.slice(0, 12)}: ${(err as Error).message}`);
    }
  }

  /**
   * Finds what a key is: through the process's /proc entry when it still lives, else
   * by walking the cgroup hierarchy. Undefined when the cgroup is gone already.
   */
  resolve(key: bigint, pidHint: number, pidNs?: number): Promise<KeyIdentity | undefined> {
    const known = this.byKey.get(key);
    if (known) return Promise.resolve(known);
    let p = this.pending.get(key);
    if (!p) {
      p = this.resolveUncached(key, pidHint, pidNs).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async resolveUncached(key: bigint, pid: number, pidNs: number | undefined): Promise<KeyIdentity | undefined> {
    let path = cgroupPathOfPid(this.hierarchy, pid);
    if (path === undefined || keyOfCgroupPath(this.hierarchy, path) !== key) path = await findCgroupPathByKey(this.hierarchy, key);
    if (path === undefined) return undefined;
    const parsed = containerIdFromCgroupPath(path) ?? this.ownPidNamespace(path, pid, pidNs);
    if (!parsed) {
      const identity: KeyIdentity = { type: 'host', cgroupPath: path };
      this.byKey.set(key, identity);
      // Never silent: each cgroup given up on is named once, with the reason, and counted.
      this.ignoredCgroups++;
      this.log(`ignoring cgroup ${path} (key ${key}): its path names no container runtime's container (docker, podman, CRI-O, containerd, Kubernetes, LXC/Incus, systemd-nspawn) and its task (process ${pid}) was in the host's pid namespace, so it is taken for a host service with a private mount namespace; its records are dropped from now on`);
      return identity;
    }
    const cached = this.refById.get(parsed.id);
    let container: ContainerRef = cached ?? Object.freeze({ id: parsed.id, name: parsed.name ?? '', image: '', runtime: parsed.runtime });
    if (!cached && this.docker && (parsed.runtime === 'docker' || (parsed.runtime === 'unknown' && parsed.name === undefined))) {
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

  /**
   * A cgroup no runtime's naming covers, whose process lives in a pid namespace of its own
   * (the host's services do not make one; every container runtime does): a container of
   * a runtime vigil does not know, watched as one. Its id is the cgroup's path.
   */
  private ownPidNamespace(path: string, pid: number, pidNs: number | undefined): CgroupContainerId | undefined {
    // The kernel's word (the record's pid namespace) first; /proc only when it is not given.
    const inode = (link: string) => Number(/\[(\d+)\]/.exec(link)?.[1] ?? NaN);
    let ns = pidNs;
    if (ns === undefined || ns === 0) {
      try {
        ns = inode(readlinkSync(`/proc/${pid}/ns/pid`));
      } catch {
        return undefined; // gone: nothing to tell it by
      }
    }
    if (this.hostPidNs === undefined) {
      try {
        this.hostPidNs = inode(readlinkSync('/proc/self/ns/pid'));
      } catch {
        return undefined;
      }
    }
    if (ns === this.hostPidNs) return undefined;
    return { id: path, runtime: 'unknown', name: path.slice(path.lastIndexOf('/') + 1) };
  }

  private inspectLater(key: bigint, id: string, attempt: number): void {
    if (!this.docker || attempt > 5) return;
    const docker = this.docker;
    setTimeout(() => {
      docker.inspect(id, this.inspectTimeoutMs).then(
        (info) => {
          const known = this.byKey.get(key);
          if (known?.type === 'container' && known.container.id === info.id) {
            const ref = this.toRef(info);
            this.byKey.set(key, { type: 'container', container: ref });
            this.onContainer?.(key, ref);
          }
        },
        (err: Error) => {
          if (!isNotFound(err)) this.inspectLater(key, id, attempt + 1);
        },
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
      const id = identity.container.id;
      let keys = this.keysById.get(id);
      if (!keys) this.keysById.set(id, (keys = new Set()));
      keys.add(key);
      if (!known) this.onContainer?.(key, identity.container);
    }
  }

  private toRef(info: DockerContainerInfo): ContainerRef {
    this.factsById.set(info.id, Object.freeze({ labels: Object.freeze({ ...info.labels }), upperDir: info.upperDir, lowerDirs: Object.freeze([...info.lowerDirs]), imageId: info.imageId }));
    // Frozen: events share it and its JSON is cached (a change is a new object).
    const ref: ContainerRef = Object.freeze({ id: info.id, name: info.name, image: info.image, runtime: 'docker' });
    this.keepRef(ref);
    return ref;
  }

  /**
   * A destroyed container is forgotten (its keys, ref and facts) forgetAfterMs later:
   * its records may still be in flight behind a backlog, or not even read yet (the
   * runtime's event can come before the kernel's records of the container are handled,
   * so this goes by id, whatever keys it has now or gets meanwhile). At most
   * maxForgotten wait at once; beyond that the oldest goes first.
   */
  private forgetLater(id: string): void {
    if (this.forgetting.has(id)) return;
    const timer = setTimeout(() => this.forget(id), this.forgetAfterMs);
    timer.unref();
    this.forgetting.set(id, timer);
    while (this.forgetting.size > this.maxForgotten) {
      const oldest = this.forgetting.keys().next().value as string;
      this.forget(oldest);
    }
  }

  private forget(id: string): void {
    const timer = this.forgetting.get(id);
    if (timer) clearTimeout(timer);
    this.forgetting.delete(id);
    for (const key of this.keysById.get(id) ?? []) {
      const known = this.byKey.get(key);
      if (known?.type === 'container' && known.container.id === id) this.byKey.delete(key);
    }
    this.keysById.delete(id);
    this.refById.delete(id);
    this.factsById.delete(id);
  }
}

function isNotFound(err: Error): boolean {
  return err instanceof DockerApiError && err.status === 404;
}
