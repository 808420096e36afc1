// The event as CEL sees it: the JSON log's fields, with integers as BigInt (CEL's int)
// and what enrichment adds. The container's part is built once per container object;
// the rest once per event, and only for events some rule looks at.
import type { ContainerRef, VigilEvent } from '../events/index.js';

export interface ContainerFacts {
  labels: Readonly<Record<string, string>>;
}

const containerViews = new WeakMap<ContainerRef, Record<string, unknown>>();
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export function containerView(c: ContainerRef, facts: ContainerFacts | undefined): Record<string, unknown> {
  let v = containerViews.get(c);
  if (!v) {
    v = { id: c.id, name: c.name, image: c.image, runtime: c.runtime, labels: facts?.labels ?? NO_LABELS };
    // Only a frozen ref is shared between events and never changes: others are not cached.
    if (Object.isFrozen(c)) containerViews.set(c, v);
  }
  return v;
}

const EMPTY: readonly string[] = Object.freeze([]);

export function activationOf(e: VigilEvent, container: Record<string, unknown>): Record<string, unknown> {
  const p = e.process;
  return {
    seq: BigInt(e.seq),
    time: e.time,
    host: e.host,
    kind: e.kind,
    syscall: e.syscall,
    args: e.args,
    ret: e.ret === null ? null : BigInt(e.ret),
    error: e.error ?? '',
    container,
    process: {
      pid: BigInt(p.pid),
      nsPid: BigInt(p.nsPid),
      ppid: BigInt(p.ppid),
      parent: p.parent,
      comm: p.comm,
      exe: p.exe,
      args: p.args,
      argsTruncated: p.argsTruncated,
      uid: BigInt(p.uid),
      gid: BigInt(p.gid),
      caps: p.caps,
      containerSetup: p.containerSetup,
      ancestors: p.ancestors ?? EMPTY,
      entered: p.entered ?? false,
      stdio: p.stdio ?? EMPTY,
      exeWritten: p.exeWritten ?? false,
      exeInImage: p.exeInImage ?? true,
      parentExe: p.parentExe ?? '',
      name: p.name ?? p.comm,
    },
    namespaces: { mnt: BigInt(e.namespaces.mnt), pid: BigInt(e.namespaces.pid), cgroupId: e.namespaces.cgroupId, containerKey: e.namespaces.containerKey },
  };
}
