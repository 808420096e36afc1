// Loads vigil's BPF objects, shares their common maps, attaches every program and
// gives typed access to the maps user space drives (config, lost counters, ignored
// cgroups). One BpfSensor per agent.
import { closeSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { koffi, libbpf, libbpfError, pidfdOpen, type ObjectOpenOptions, type Pointer } from './libbpf.js';
import { SensorError } from './errors.js';
import { checkHost, kernelHasTracepoint } from './preflight.js';
import { ALLOW_PENDING_LAYOUT, ALLOW_WORDS, ALLOWLIST_LAYOUT, BUDGET_CONFIG_LAYOUT, STDIO_KIND, CGROUP_MODE, CONFIG_LAYOUT, LOSS_REASON, LOST_KEY_LAYOUT, COUNT_KEY_LAYOUT, KIND_MAX, MAX_SYSCALL, PATH_KEY_LAYOUT, RULE_LAYOUT, STR_MAX, TASK_STATE_LAYOUT } from '../events/layout.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_OBJECT_DIR = join(repoRoot, 'bpf', '.output');
/** The objects the agent loads, in order; the first one creates the shared maps. */
export const DEFAULT_OBJECTS = ['process.bpf.o', 'syscalls.bpf.o', 'capability.bpf.o', 'network.bpf.o', 'cgroup.bpf.o', 'io_uring.bpf.o'];

/**
 * Objects that need a tracepoint younger than the kernels vigil runs on: on a kernel
 * without it the object is left out and the agent says what is not observed.
 */
export const OPTIONAL_OBJECTS: Readonly<Record<string, { tracepoint: string; what: string; since: string }>> = {
  'capability.bpf.o': { tracepoint: 'cap_capable', what: 'capability checks', since: 'Linux 6.14' },
  // Without it a container's identity is looked up when its first records are read: one
  // gone by then (short-lived, behind a backlog) has its events written without it.
  'cgroup.bpf.o': { tracepoint: 'cgroup_mkdir', what: 'new cgroups (container identities at creation)', since: 'Linux 4.19' },
  // A kernel built without io_uring has no ring to watch; one older than 5.18 lacks the tracepoint's request argument.
  'io_uring.bpf.o': { tracepoint: 'io_uring_submit_req', what: 'io_uring rings and requests', since: 'Linux 5.18, with CONFIG_IO_URING' },
};

export interface SensorOptions {
  objectDir?: string;
  objects?: string[];
  /** A BTF file for kernels that expose none in /sys/kernel/btf/vmlinux. */
  btfPath?: string | undefined;
  /** Bytes of the event ring buffer: a power of two, at least one page. */
  ringBufferBytes?: number;
  /**
   * Load the in-kernel kill (enforce.bpf.o) too: only when some kill rule compiled to kernel
   * clauses, so the default configuration runs none of it. It is loaded first, so its
   * programs run before the others on the same tracepoints and the kill is marked in the
   * task's state before the exec record is built (bpf/enforce.bpf.c).
   */
  enforce?: boolean;
}

/** A kernel clause as src/policy/kernel-rules.ts makes it (structural: the sensor does not depend on the policy). */
export interface EnforceClause {
  rule: number;
  where: 'exec' | 'sys_enter' | 'sys_exit';
  atoms: ReadonlyArray<
    | { type: 'setup'; negate: boolean }
    | { type: 'str'; field: 'comm' | 'exe_base' | 'arg0' | 'arg1' | 'path' | 'exe'; op: 'eq' | 'prefix' | 'suffix'; values: readonly string[]; negate: boolean }
    | { type: 'argc_gt'; n: number; negate: boolean }
    | { type: 'stdio_any'; kinds: readonly string[]; negate: boolean }
    | { type: 'stdio_at'; fd: number; kinds: readonly string[]; negate: boolean }
    | { type: 'syscall'; names: readonly string[] }
    | { type: 'port'; ports: readonly number[]; negate: boolean }
    /** Networks as address bytes (4 or 16, network order) and a prefix length. */
    | { type: 'net'; networks: ReadonlyArray<{ bytes: readonly number[]; prefix: number }>; negate: boolean }
    | { type: 'family'; families: ReadonlyArray<'AF_INET' | 'AF_INET6'>; negate: boolean }
    /** Holds when flags & bits, or when the access mode (flags & 3) is one of access. */
    | { type: 'oflags'; bits: number; access: readonly number[]; negate: boolean }
    | { type: 'failed' }
  >;
}

/** bpf/enforce.h, mirrored. */
const ENFORCE = {
  clauses: 32, atoms: 8, syscalls: 512, str: 64,
  clauseSize: 8 + 8 * 8, kconfSize: 16, strKeySize: 8 + 64, portKeySize: 8, netKeySize: 28,
  where: { exec: 1, sys_enter: 2, sys_exit: 3 } as Record<string, number>,
  atom: { setup: 1, str: 2, argc_gt: 3, stdio_any: 4, stdio_at: 5, syscall: 6, port: 7, net: 8, family: 9, oflags: 10, failed: 11 } as Record<string, number>,
  field: { comm: 0, exe_base: 1, arg0: 2, arg1: 3, path: 4, exe: 5 } as Record<string, number>,
  needExePath: 1,
  op: { eq: 0, prefix: 1, suffix: 2 } as Record<string, number>,
} as const;

export type CgroupMode = 'v2' | 'v1-memory';

export interface KernelConfig {
  hostMountNs: number;
  cgroupMode: CgroupMode;
  /** Rules marked path-filtered pass only watched paths. */
  pathFilter: boolean;
  /** Rules marked port-filtered pass only watched ports. */
  portFilter: boolean;
  capabilityDedup: boolean;
  countSyscalls: boolean;
  /** Exec records carry the environment (it may hold secrets: opt-in). */
  captureEnvironment: boolean;
  /** CLOCK_MONOTONIC ns from which new tasks entering a container count as the runtime's (default: now). */
  startedNs?: bigint;
  /** Each container's calls are checked against its allow-list (setAllowlist); off: none is. */
  allowlists?: boolean;
}

/** Records of one container not queued in the kernel, of one kind, for one reason. */
export interface ContainerLoss { key: bigint; kind: number; reason: 'ring_full' | 'budget'; count: bigint }

export interface LossSnapshot {
  /** Host-wide, by record kind: ring full, and budget spent. */
  totals: { ring: Map<number, bigint>; budget: Map<number, bigint> };
  byContainer: ContainerLoss[];
}

/** See BpfSensor.setBudget and struct vigil_budget_config. */
export interface BudgetSettings { rate: number; burst: number; pressureBytes: number; wakeupBytes: number }

// linkIds: the kernel id of each link at attach time, to tell whether its fd still holds it.
interface LoadedObject { name: string; obj: Pointer; links: Pointer[]; linkIds?: number[] }

/** A loaded program as the kernel reports it (see BpfSensor.programInfo). */
export interface ProgramInfo { object: string; name: string; id: number; type: number; tag: string; xlatedBytes: number; xlatedSha256: string }

/** Maps the agent alone writes and the kernel only reads (see BpfSensor.verifyControlMaps). */
const CONTROL_MAPS = new Set([
  'vigil_config', 'vigil_budget_config', 'vigil_syscall_rules', 'vigil_path_prefixes', 'vigil_path_suffixes', 'vigil_ports',
  'vigil_ignored_cgroups', 'vigil_stream', 'vigil_kconf', 'vigil_kclauses', 'vigil_ksyscalls', 'vigil_kexit_syscalls',
  'vigil_kstrings', 'vigil_kports', 'vigil_knets', 'vigil_kmask',
]);

/** A control map found not to hold what the agent wrote (and put back). */
export interface ControlMapChange { map: string; key: string; change: 'changed' | 'added' | 'removed' }

export class BpfSensor {
  /** What the agent wrote into each control map, by key (hex). */
  private readonly written = new Map<string, Map<string, Buffer>>();
  private readonly objects: LoadedObject[] = [];
  private readonly mapFds = new Map<string, number>();
  private closed = false;
  /** Bytes of the event ring buffer. */
  ringBufferBytes = 0;
  /** What this kernel cannot show (an optional object left out), one sentence each. */
  readonly unavailable: string[] = [];

  private constructor() {}

  static open(opts: SensorOptions = {}): BpfSensor {
    const dir = opts.objectDir ?? DEFAULT_OBJECT_DIR;
    const names = [...(opts.enforce ? ['enforce.bpf.o'] : []), ...(opts.objects ?? DEFAULT_OBJECTS)];
    const paths = names.map((n) => join(dir, n));
    checkHost({ btfPath: opts.btfPath, objectPaths: paths });
    const ringBytes = opts.ringBufferBytes ?? 16 * 1024 * 1024;
    if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) {
      throw new SensorError('VIGIL_RING_BUFFER', `ring buffer size ${ringBytes} is not a power of two of at least 4096 bytes`);
    }
    const sensor = new BpfSensor();
    sensor.ringBufferBytes = ringBytes;
    try {
      for (const [i, path] of paths.entries()) {
        const name = names[i] as string;
        const optional = OPTIONAL_OBJECTS[name];
        if (optional && !kernelHasTracepoint(optional.tracepoint, opts.btfPath)) {
          sensor.unavailable.push(`${optional.what} are not observed: this kernel has no ${optional.tracepoint} tracepoint (${optional.since} or later)`);
          continue;
        }
        sensor.loadObjectRetrying(name, path, opts.btfPath, ringBytes);
      }
    } catch (err) {
      sensor.close();
      throw err;
    }
    return sensor;
  }

  /**
   * The verifier gives up with EAGAIN when a signal arrives while it works (a profiler's
   * SIGPROF, a SIGCHLD); libbpf retries a few times at once, and so do we, with a pause.
   */
  private loadObjectRetrying(name: string, path: string, btfPath: string | undefined, ringBytes: number): void {
    const EAGAIN = 11;
    for (let attempt = 1; ; attempt++) {
      try {
        this.loadObject(name, path, btfPath, ringBytes);
        return;
      } catch (err) {
        if (!(err instanceof SensorError && err.code === 'VIGIL_BPF_LOAD' && err.errno === EAGAIN) || attempt >= 5) throw err;
        const failed = this.objects.pop();
        if (failed) libbpf().lib.bpf_object__close(failed.obj);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * attempt);
      }
    }
  }

  private loadObject(name: string, path: string, btfPath: string | undefined, ringBytes: number): void {
    const { lib } = libbpf();
    const openOpts: ObjectOpenOptions = {
      sz: 80, object_name: null, relaxed_maps: false, pin_root_path: null, _removed_attach_prog_fd: 0,
      kconfig: null, btf_custom_path: btfPath ?? null, kernel_log_buf: null, kernel_log_size: 0, kernel_log_level: 0,
    };
    const obj = lib.bpf_object__open_file(path, openOpts);
    if (!obj) throw new SensorError('VIGIL_BPF_OPEN', `cannot open BPF object ${path}: ${libbpfError(koffiErrno())}`);
    const loaded: LoadedObject = { name, obj, links: [] };
    this.objects.push(loaded);

    // Maps an earlier object created are shared, not created again.
    for (let m = lib.bpf_object__next_map(obj, null); m; m = lib.bpf_object__next_map(obj, m)) {
      const mapName = lib.bpf_map__name(m);
      const fd = this.mapFds.get(mapName);
      if (fd !== undefined) {
        const rc = lib.bpf_map__reuse_fd(m, fd);
        if (rc < 0) throw new SensorError('VIGIL_BPF_MAP', `cannot share map ${mapName} with ${name}: ${libbpfError(rc)}`);
      } else if (mapName === 'vigil_events') {
        lib.bpf_map__set_max_entries(m, ringBytes);
      }
    }
    const rc = lib.bpf_object__load(obj);
    if (rc < 0) {
      throw new SensorError('VIGIL_BPF_LOAD', `the kernel refused BPF object ${name}: ${libbpfError(rc)} (libbpf printed the details above)`, -rc);
    }
    for (let m = lib.bpf_object__next_map(obj, null); m; m = lib.bpf_object__next_map(obj, m)) {
      const mapName = lib.bpf_map__name(m);
      if (!this.mapFds.has(mapName)) this.mapFds.set(mapName, lib.bpf_map__fd(m));
    }
    for (let p = lib.bpf_object__next_program(obj, null); p; p = lib.bpf_object__next_program(obj, p)) {
      const link = lib.bpf_program__attach(p);
      if (!link) {
        throw new SensorError('VIGIL_BPF_ATTACH', `cannot attach BPF program ${lib.bpf_program__name(p)} of ${name}: ${libbpfError(koffiErrno())}`);
      }
      loaded.links.push(link);
      (loaded.linkIds ??= []).push(linkInfoByFd(lib.bpf_link__fd(link))?.linkId ?? 0);
    }
  }

  mapFd(name: string): number {
    const fd = this.mapFds.get(name);
    if (fd === undefined) throw new SensorError('VIGIL_BPF_MAP', `no BPF map named ${name} in the loaded objects`);
    return fd;
  }

  get ringBufferFd(): number {
    return this.mapFd('vigil_events');
  }

  /** Tells the kernel side which tasks are the host's and how to key containers, then switches it on. */
  configure(cfg: KernelConfig): void {
    const value = Buffer.alloc(CONFIG_LAYOUT.size);
    value.writeUInt32LE(cfg.hostMountNs, CONFIG_LAYOUT.host_mnt_ns);
    value.writeUInt32LE(cfg.cgroupMode === 'v2' ? CGROUP_MODE.V2 : CGROUP_MODE.V1_MEMORY, CONFIG_LAYOUT.cgroup_mode);
    value.writeUInt32LE(1, CONFIG_LAYOUT.enabled);
    value.writeUInt32LE(cfg.pathFilter ? 1 : 0, CONFIG_LAYOUT.path_filter);
    value.writeUInt32LE(cfg.portFilter ? 1 : 0, CONFIG_LAYOUT.port_filter);
    value.writeUInt32LE(cfg.capabilityDedup ? 1 : 0, CONFIG_LAYOUT.cap_dedup);
    value.writeUInt32LE(cfg.countSyscalls ? 1 : 0, CONFIG_LAYOUT.count_syscalls);
    value.writeUInt32LE(cfg.captureEnvironment ? 1 : 0, CONFIG_LAYOUT.capture_env);
    // process.hrtime and the kernel's task start times both read CLOCK_MONOTONIC.
    value.writeBigUInt64LE(cfg.startedNs ?? process.hrtime.bigint(), CONFIG_LAYOUT.started_ns);
    value.writeUInt32LE(cfg.allowlists ? 1 : 0, CONFIG_LAYOUT.allowlists);
    this.update('vigil_config', u32(0), value);
  }

  /**
   * Loads a container's allow-list (bpf/allowlist.h): allowed holds the bits (rule slots)
   * of the calls allowed, flags ALLOWLIST_FLAG bits. Replaces any earlier list, and with it
   * the record of which calls were reported already.
   */
  setAllowlist(key: bigint, allowed: ReadonlySet<number>, flags: number): void {
    const value = Buffer.alloc(ALLOWLIST_LAYOUT.size);
    for (const bit of allowed) {
      if (!Number.isInteger(bit) || bit < 0 || bit >= ALLOW_WORDS * 64) throw new SensorError('VIGIL_BPF_MAP', `allow-list bit ${bit} is out of range`);
      const at = ALLOWLIST_LAYOUT.allowed + (bit >> 6) * 8;
      value.writeBigUInt64LE(value.readBigUInt64LE(at) | (1n << BigInt(bit & 63)), at);
    }
    value.writeUInt32LE(flags, ALLOWLIST_LAYOUT.flags);
    this.update('vigil_allowlists', u64(key), value);
  }

  /** Forgets a container's allow-list (the container is gone). */
  deleteAllowlist(key: bigint): void {
    libbpf().lib.bpf_map_delete_elem(this.mapFd('vigil_allowlists'), u64(key));
    libbpf().lib.bpf_map_delete_elem(this.mapFd('vigil_allow_pending'), u64(key));
  }

  /**
   * The calls a container made before its list was loaded (bits, as setAllowlist's), and
   * forgets them; undefined when it made none the kernel remembered.
   */
  takePendingCalls(key: bigint): Set<number> | undefined {
    const { lib } = libbpf();
    const fd = this.mapFd('vigil_allow_pending');
    const value = Buffer.alloc(ALLOW_PENDING_LAYOUT.size);
    // One step: a bit the kernel sets between a lookup and a delete would be lost.
    if (lib.bpf_map_lookup_and_delete_elem(fd, u64(key), value) < 0) return undefined;
    const bits = new Set<number>();
    for (let w = 0; w < ALLOW_WORDS; w++) {
      const word = value.readBigUInt64LE(ALLOW_PENDING_LAYOUT.seen + w * 8);
      if (word === 0n) continue;
      for (let b = 0; b < 64; b++) if ((word >> BigInt(b)) & 1n) bits.add(w * 64 + b);
    }
    return bits;
  }

  /** Installs the capture rule of each syscall number (struct vigil_syscall_rule bytes); others are cleared. */
  setSyscallRules(rules: ReadonlyMap<number, Buffer>): void {
    const none = Buffer.alloc(RULE_LAYOUT.size);
    for (let nr = 0; nr < MAX_SYSCALL; nr++) this.update('vigil_syscall_rules', u32(nr), rules.get(nr) ?? none);
  }

  /**
   * Watched path sets: prefixes (value true watches, false excludes) and suffixes. With
   * replace, entries not in the new sets are removed (a policy reload narrows them).
   */
  setWatchedPaths(prefixes: ReadonlyMap<string, boolean>, suffixes: readonly string[], replace = false): void {
    const key = (text: string) => {
      const bytes = Buffer.from(text, 'utf8');
      if (bytes.length === 0 || bytes.length > STR_MAX) throw new SensorError('VIGIL_BPF_MAP', `watched path '${text}' must be 1 to ${STR_MAX} bytes`);
      const k = Buffer.alloc(PATH_KEY_LAYOUT.size);
      k.writeUInt32LE(bytes.length * 8, PATH_KEY_LAYOUT.prefixlen);
      bytes.copy(k, PATH_KEY_LAYOUT.path);
      return k;
    };
    const prefixKeys = [...prefixes].map(([p, watch]) => [key(p), watch] as const);
    const suffixKeys = suffixes.map((sfx) => key([...sfx].reverse().join('')));
    if (replace) {
      this.deleteKeysExcept('vigil_path_prefixes', prefixKeys.map(([k]) => k));
      this.deleteKeysExcept('vigil_path_suffixes', suffixKeys);
    }
    for (const [k, watch] of prefixKeys) this.update('vigil_path_prefixes', k, Buffer.from([watch ? 1 : 0]));
    for (const k of suffixKeys) this.update('vigil_path_suffixes', k, Buffer.from([1]));
  }

  /** Removes every key of a map that is not among keep (compared as bytes). */
  private deleteKeysExcept(map: string, keep: readonly Buffer[]): void {
    const { lib } = libbpf();
    const fd = this.mapFd(map);
    const wanted = new Set(keep.map((k) => k.toString('hex')));
    const stale: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(PATH_KEY_LAYOUT.size);
      if (lib.bpf_map_get_next_key(fd, prev, next) < 0) break;
      prev = next;
      if (!wanted.has(next.toString('hex'))) stale.push(next);
    }
    for (const k of stale) this.remove(map, k);
  }

  /** Watched ports: the filter's set (replaced whole). */
  setWatchedPorts(ports: readonly number[]): void {
    const { lib } = libbpf();
    const fd = this.mapFd('vigil_ports');
    const keep = new Set(ports);
    let prev: Buffer | null = null;
    const stale: Buffer[] = [];
    for (;;) {
      const next = Buffer.alloc(2);
      if (lib.bpf_map_get_next_key(fd, prev, next) < 0) break;
      prev = next;
      if (!keep.has(next.readUInt16LE())) stale.push(next);
    }
    for (const k of stale) this.remove('vigil_ports', k);
    for (const port of ports) {
      const k = Buffer.alloc(2);
      k.writeUInt16LE(port);
      this.update('vigil_ports', k, Buffer.from([1]));
    }
  }

  /** Is the in-kernel kill loaded (SensorOptions.enforce)? */
  get enforcing(): boolean {
    return this.objects.some((o) => o.name === 'enforce.bpf.o');
  }

  /**
   * Fills the in-kernel kill's maps (bpf/enforce.h): the clauses, their string sets and
   * system call numbers, and the mask of rules for containers not in the per-container map.
   * Enforcement is off while the maps change (user space still kills), on after when `on`.
   * syscallNumber maps a name to its x86-64 number.
   */
  setKernelRules(clauses: readonly EnforceClause[], defaultMask: number, on: boolean, syscallNumber: (name: string) => number | undefined): void {
    const { lib } = libbpf();
    if (clauses.length > ENFORCE.clauses) throw new SensorError('VIGIL_BPF_MAP', `${clauses.length} kernel clauses: the kernel takes ${ENFORCE.clauses}`);
    const needs = clauses.some((c) => c.where === 'exec' && c.atoms.some((a) => a.type === 'str' && a.field === 'exe')) ? ENFORCE.needExePath : 0;
    const conf = (enabled: boolean) => {
      const v = Buffer.alloc(ENFORCE.kconfSize);
      v.writeUInt32LE(enabled ? 1 : 0, 0);
      v.writeUInt32LE(defaultMask >>> 0, 4);
      v.writeUInt32LE(clauses.length, 8);
      v.writeUInt32LE(needs, 12);
      return v;
    };
    this.update('vigil_kconf', u32(0), conf(false));
    // Old sets out; new ones in (set ids are per atom, from 1).
    for (const [map, size] of [['vigil_kstrings', ENFORCE.strKeySize], ['vigil_kports', ENFORCE.portKeySize], ['vigil_knets', ENFORCE.netKeySize]] as const) {
      const fd = this.mapFd(map);
      for (;;) {
        const k = Buffer.alloc(size);
        if (lib.bpf_map_get_next_key(fd, null, k) < 0) break;
        if (lib.bpf_map_delete_elem(fd, k) < 0) break;
        this.written.get(map)?.delete(k.toString('hex'));
      }
    }
    const sysMasks = new Map<number, number>();
    const exitMasks = new Map<number, number>();
    let nextSet = 1;
    for (let c = 0; c < ENFORCE.clauses; c++) {
      const v = Buffer.alloc(ENFORCE.clauseSize);
      const clause = clauses[c];
      if (clause) {
        if (clause.atoms.length > ENFORCE.atoms) throw new SensorError('VIGIL_BPF_MAP', `a kernel clause of ${clause.atoms.length} atoms: the kernel takes ${ENFORCE.atoms}`);
        v.writeUInt32LE(clause.rule, 0);
        v.writeUInt8(ENFORCE.where[clause.where] ?? 0, 4);
        v.writeUInt8(clause.atoms.length, 5);
        clause.atoms.forEach((a, i) => {
          const o = 8 + 8 * i;
          v.writeUInt8(ENFORCE.atom[a.type] ?? 0, o);
          v.writeUInt8('negate' in a && a.negate ? 1 : 0, o + 1);
          switch (a.type) {
            case 'str': {
              const set = nextSet++;
              v.writeUInt8((ENFORCE.field[a.field] ?? 0) | ((ENFORCE.op[a.op] ?? 0) << 4), o + 2);
              v.writeUInt32LE(set, o + 4);
              for (const text of a.values) this.update('vigil_kstrings', enforceStringKey(set, text, a.op), Buffer.from([1]));
              break;
            }
            case 'argc_gt': v.writeUInt32LE(a.n, o + 4); break;
            case 'stdio_any': v.writeUInt32LE(stdioMask(a.kinds), o + 4); break;
            case 'stdio_at': v.writeUInt8(a.fd, o + 2); v.writeUInt32LE(stdioMask(a.kinds), o + 4); break;
            case 'syscall': {
              const masks = clause.where === 'sys_exit' ? exitMasks : sysMasks;
              for (const name of a.names) {
                const nr = syscallNumber(name);
                if (nr === undefined || nr >= ENFORCE.syscalls) throw new SensorError('VIGIL_BPF_MAP', `kernel clause: no x86-64 number below ${ENFORCE.syscalls} for system call ${name}`);
                masks.set(nr, (masks.get(nr) ?? 0) | (1 << c));
              }
              break;
            }
            case 'port': {
              const set = nextSet++;
              v.writeUInt32LE(set, o + 4);
              for (const port of a.ports) {
                if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SensorError('VIGIL_BPF_MAP', `kernel clause: port ${port} is not 1-65535`);
                const k = Buffer.alloc(ENFORCE.portKeySize);
                k.writeUInt32LE(set, 0);
                k.writeUInt16LE(port, 4);
                this.update('vigil_kports', k, Buffer.from([1]));
              }
              break;
            }
            case 'net': {
              const set = nextSet++;
              v.writeUInt32LE(set, o + 4);
              for (const n of a.networks) {
                const bits = n.bytes.length * 8;
                if ((n.bytes.length !== 4 && n.bytes.length !== 16) || n.prefix < 0 || n.prefix > bits) throw new SensorError('VIGIL_BPF_MAP', `kernel clause: a network of ${n.bytes.length} bytes with prefix /${n.prefix}`);
                const k = Buffer.alloc(ENFORCE.netKeySize);
                k.writeUInt32LE(32 + 8 + n.prefix, 0);
                k.writeUInt32LE(set, 4);
                k.writeUInt8(n.bytes.length === 4 ? 4 : 6, 8);
                Buffer.from(n.bytes).copy(k, 9);
                this.update('vigil_knets', k, Buffer.from([1]));
              }
              break;
            }
            case 'family':
              v.writeUInt32LE((a.families.includes('AF_INET') ? 1 : 0) | (a.families.includes('AF_INET6') ? 2 : 0), o + 4);
              break;
            case 'oflags':
              v.writeUInt8(a.access.reduce((m, x) => m | (1 << (x & 3)), 0), o + 2);
              v.writeUInt32LE(a.bits >>> 0, o + 4);
              break;
            default: break;
          }
        });
      }
      this.update('vigil_kclauses', u32(c), v);
    }
    for (let nr = 0; nr < ENFORCE.syscalls; nr++) {
      this.update('vigil_ksyscalls', u32(nr), u32((sysMasks.get(nr) ?? 0) >>> 0));
      this.update('vigil_kexit_syscalls', u32(nr), u32((exitMasks.get(nr) ?? 0) >>> 0));
    }
    if (on) this.update('vigil_kconf', u32(0), conf(true));
  }

  /** The kernel rules on for one container (bit = rule; 0 for a protected one), or back to the default when undefined. */
  setContainerKillMask(key: bigint, mask: number | undefined): void {
    const k = Buffer.alloc(8);
    k.writeBigUInt64LE(key);
    if (mask === undefined) this.remove('vigil_kmask', k);
    else this.update('vigil_kmask', k, u32(mask >>> 0));
  }

  /** Streams every system call of one container (by key) raw, or stops doing so. */
  streamContainer(key: bigint, on: boolean): void {
    const k = Buffer.alloc(8);
    k.writeBigUInt64LE(key);
    if (on) this.update('vigil_stream', k, Buffer.from([1]));
    else this.remove('vigil_stream', k);
  }

  /** Every syscall counted per container key and number, summed over CPUs. */
  syscallCounts(): Map<bigint, Map<number, bigint>> {
    const { lib } = libbpf();
    const fd = this.mapFd('vigil_syscall_counts');
    const cpus = possibleCpuCount();
    const out = new Map<bigint, Map<number, bigint>>();
    const value = Buffer.alloc(8 * cpus);
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(COUNT_KEY_LAYOUT.size);
      if (lib.bpf_map_get_next_key(fd, prev, next) < 0) break;
      prev = next;
      if (lib.bpf_map_lookup_elem(fd, next, value) < 0) continue; // evicted meanwhile
      let total = 0n;
      for (let c = 0; c < cpus; c++) total += value.readBigUInt64LE(c * 8);
      const key = next.readBigUInt64LE(COUNT_KEY_LAYOUT.container_key);
      const nr = next.readUInt32LE(COUNT_KEY_LAYOUT.nr);
      let perKey = out.get(key);
      if (!perKey) out.set(key, (perKey = new Map()));
      perKey.set(nr, total);
    }
    return out;
  }

  /** Marks a cgroup (by container key) as not a container: its tasks are dropped in the kernel. */
  ignoreCgroup(key: bigint): void {
    const k = Buffer.alloc(8);
    k.writeBigUInt64LE(key);
    this.update('vigil_ignored_cgroups', k, Buffer.from([1]));
  }

  /**
   * Remembers a task as a container's under `key`, as the kernel does for the tasks it
   * sees in a container (task storage, written through a pidfd): for a process that
   * left its container's mount namespace before the agent started. `thread` names a
   * thread id rather than a process (needs PIDFD_THREAD, Linux 6.9). 'gone' when the
   * task ended (or stillSame says its pid now names another), 'known' when the kernel
   * remembers it already (left as is); other failures throw.
   */
  rememberTask(id: number, key: bigint, thread: boolean, stillSame: () => boolean = () => true): 'remembered' | 'gone' | 'known' {
    const PIDFD_THREAD = 0o200; // O_EXCL
    const BPF_NOEXIST = 1;
    const [ESRCH, EEXIST] = [3, 17];
    const pidfd = pidfdOpen(id, thread ? PIDFD_THREAD : 0);
    if (pidfd < 0) {
      const errno = koffi.errno();
      if (errno === ESRCH) return 'gone';
      throw new SensorError('VIGIL_BPF_MAP', `cannot open a pidfd for ${thread ? 'thread' : 'process'} ${id}: ${libbpfError(errno)}`);
    }
    try {
      // The pidfd names whatever holds the pid now: a process that ended since the scan
      // and left its pid to another must not be remembered in its place.
      if (!stillSame()) return 'gone';
      const k = Buffer.alloc(4);
      k.writeInt32LE(pidfd);
      const v = Buffer.alloc(TASK_STATE_LAYOUT.size);
      v.writeBigUInt64LE(key, TASK_STATE_LAYOUT.key);
      const rc = libbpf().lib.bpf_map_update_elem(this.mapFd('vigil_container_tasks'), k, v, BPF_NOEXIST);
      if (rc === 0) return 'remembered';
      if (-rc === EEXIST) return 'known';
      if (-rc === ESRCH) return 'gone';
      throw new SensorError('VIGIL_BPF_MAP', `cannot remember ${thread ? 'thread' : 'process'} ${id} in vigil_container_tasks: ${libbpfError(rc)}`);
    } finally {
      closeSync(pidfd);
    }
  }

  /** Records lost because the ring buffer was full, by record kind, one count per CPU. */
  lostByCpu(): Map<number, bigint[]> {
    return this.perKindByCpu('vigil_lost');
  }

  /** Records dropped because their container had spent its budget, by record kind, one count per CPU. */
  shedByCpu(): Map<number, bigint[]> {
    return this.perKindByCpu('vigil_shed');
  }

  /**
   * Host-wide totals of records not queued, by reason and kind, then the same by
   * container: read in this order, and the kernel counts a record under its container
   * before it counts it host-wide, so every record in the totals is in the per-container
   * counts too (unless its key was evicted from the LRU map before this read).
   */
  lossSnapshot(): LossSnapshot {
    const sum = (m: Map<number, bigint[]>) => new Map([...m].map(([k, perCpu]) => [k, perCpu.reduce((a, b) => a + b, 0n)]));
    const totals = { ring: sum(this.lostByCpu()), budget: sum(this.shedByCpu()) };
    return { totals, byContainer: this.lostByContainer() };
  }

  /** Records not queued, by container key, kind and reason, summed over CPUs. */
  lostByContainer(): ContainerLoss[] {
    const { lib } = libbpf();
    const fd = this.mapFd('vigil_lost_by_container');
    const cpus = possibleCpuCount();
    const value = Buffer.alloc(8 * cpus);
    const out: ContainerLoss[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(LOST_KEY_LAYOUT.size);
      if (lib.bpf_map_get_next_key(fd, prev, next) < 0) break;
      prev = next;
      if (lib.bpf_map_lookup_elem(fd, next, value) < 0) continue; // evicted meanwhile
      let count = 0n;
      for (let c = 0; c < cpus; c++) count += value.readBigUInt64LE(c * 8);
      out.push({
        key: next.readBigUInt64LE(LOST_KEY_LAYOUT.container_key),
        kind: next.readUInt32LE(LOST_KEY_LAYOUT.kind),
        reason: next.readUInt32LE(LOST_KEY_LAYOUT.reason) === LOSS_REASON.BUDGET ? 'budget' : 'ring_full',
        count,
      });
    }
    return out;
  }

  /**
   * The per-container budget and the reader's wakeup mark (struct vigil_budget_config).
   * rate 0 turns the budget off; wakeupBytes 0 leaves the kernel's wakeup on every record
   * that finds the reader idle.
   */
  setBudget(b: BudgetSettings): void {
    if (!Number.isInteger(b.rate) || b.rate < 0 || b.rate > 1e8) throw new SensorError('VIGIL_BPF_MAP', `budget rate ${b.rate} must be an integer from 0 to 100000000 records/s`);
    if (!Number.isInteger(b.burst) || b.burst < 1024 || b.burst > 1e9) throw new SensorError('VIGIL_BPF_MAP', `budget burst ${b.burst} must be an integer from 1024 (an 8 KiB record costs 256 tokens in a nearly full ring) to 1000000000 records`);
    const value = Buffer.alloc(BUDGET_CONFIG_LAYOUT.size);
    value.writeBigUInt64LE(BigInt(b.rate), BUDGET_CONFIG_LAYOUT.rate);
    value.writeBigUInt64LE(BigInt(b.burst), BUDGET_CONFIG_LAYOUT.burst);
    value.writeBigUInt64LE(BigInt(Math.floor(b.pressureBytes)), BUDGET_CONFIG_LAYOUT.pressure_bytes);
    value.writeBigUInt64LE(BigInt(Math.floor(b.wakeupBytes)), BUDGET_CONFIG_LAYOUT.wakeup_bytes);
    this.update('vigil_budget_config', u32(0), value);
  }

  private perKindByCpu(map: string): Map<number, bigint[]> {
    const fd = this.mapFd(map);
    const cpus = possibleCpuCount();
    const value = Buffer.alloc(8 * cpus);
    const out = new Map<number, bigint[]>();
    const { lib } = libbpf();
    for (let kind = 0; kind < KIND_MAX; kind++) {
      if (lib.bpf_map_lookup_elem(fd, u32(kind), value) < 0) continue;
      const perCpu = Array.from({ length: cpus }, (_, c) => value.readBigUInt64LE(c * 8));
      if (perCpu.some((n) => n > 0n)) out.set(kind, perCpu);
    }
    return out;
  }

  /** Records lost because the ring buffer was full, summed over CPUs, by record kind. */
  lostCounts(): Map<number, bigint> {
    const out = new Map<number, bigint>();
    for (const [kind, perCpu] of this.lostByCpu()) out.set(kind, perCpu.reduce((a, b) => a + b, 0n));
    return out;
  }

  update(mapName: string, key: Buffer, value: Buffer): void {
    const rc = libbpf().lib.bpf_map_update_elem(this.mapFd(mapName), key, value, 0);
    if (rc < 0) throw new SensorError('VIGIL_BPF_MAP', `cannot update BPF map ${mapName}: ${libbpfError(rc)}`);
    if (CONTROL_MAPS.has(mapName)) {
      let m = this.written.get(mapName);
      if (!m) this.written.set(mapName, (m = new Map()));
      m.set(key.toString('hex'), Buffer.from(value));
    }
  }

  /** Deletes a key the agent wrote (and forgets it wrote it). */
  private remove(mapName: string, key: Buffer): void {
    libbpf().lib.bpf_map_delete_elem(this.mapFd(mapName), key);
    this.written.get(mapName)?.delete(key.toString('hex'));
  }

  /**
   * Compares the maps only the agent writes (CONTROL_MAPS: the configuration, filters, kill
   * rules, masks; the kernel only reads them) with what it wrote, and puts back what it
   * finds changed: a root process on the host can write any BPF map (turn the monitor off,
   * clear a kill mask, widen a filter) without detaching a program. Each difference is
   * returned: a value changed, a key added, a key removed. An array's keys always exist: one
   * never written must hold zeros.
   */
  verifyControlMaps(): ControlMapChange[] {
    const { lib } = libbpf();
    const out: ControlMapChange[] = [];
    for (const name of CONTROL_MAPS) {
      const fd = this.mapFds.get(name);
      if (fd === undefined) continue;
      const info = Buffer.alloc(80);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(info.length);
      if (lib.bpf_obj_get_info_by_fd(fd, info, len) < 0) continue;
      const type = info.readUInt32LE(0);
      const keySize = info.readUInt32LE(8);
      const valueSize = info.readUInt32LE(12);
      const isArray = type === 2; // BPF_MAP_TYPE_ARRAY
      const written = this.written.get(name) ?? new Map<string, Buffer>();
      const seen = new Set<string>();
      const value = Buffer.alloc(valueSize);
      const added: Buffer[] = [];
      let prev: Buffer | null = null;
      for (;;) {
        const next = Buffer.alloc(keySize);
        if (lib.bpf_map_get_next_key(fd, prev, next) < 0) break;
        prev = next;
        const hex = next.toString('hex');
        if (lib.bpf_map_lookup_elem(fd, next, value) < 0) continue; // deleted meanwhile
        seen.add(hex);
        const expected = written.get(hex) ?? (isArray ? Buffer.alloc(valueSize) : undefined);
        if (expected === undefined) {
          out.push({ map: name, key: hex, change: 'added' });
          added.push(next); // deleted after the walk: a hash map's walk restarts at a missing key
        } else if (!expected.equals(value)) {
          out.push({ map: name, key: hex, change: 'changed' });
          lib.bpf_map_update_elem(fd, next, expected, 0);
        }
      }
      for (const k of added) lib.bpf_map_delete_elem(fd, k);
      for (const [hex, v] of written) {
        if (seen.has(hex)) continue;
        out.push({ map: name, key: hex, change: 'removed' });
        lib.bpf_map_update_elem(fd, Buffer.from(hex, 'hex'), v, 0);
      }
    }
    return out;
  }

  /** Detaches every program: nothing new is produced; the maps (and what the ring buffer holds) stay readable. */
  detach(): void {
    const { lib } = libbpf();
    for (const o of this.objects) {
      o.links.forEach((l, i) => {
        // A link fd closed behind the agent's back (the attack the self-measurement
        // reports) may now be the number of another file: destroy must not close that.
        if (linkInfoByFd(lib.bpf_link__fd(l))?.linkId !== o.linkIds?.[i]) lib.bpf_link__disconnect(l);
        lib.bpf_link__destroy(l);
      });
      o.links = [];
    }
  }

  /**
   * Each loaded program as the kernel holds it, read back with BPF_OBJ_GET_INFO_BY_FD (for
   * the self-measurement the log anchors): the kernel's tag (its hash of the instructions
   * as loaded, map references zeroed: the same for the same program in every run) and the
   * SHA-256 of the translated instructions the kernel runs (after the verifier's rewrites;
   * map ids in them differ from run to run).
   */
  programInfo(): ProgramInfo[] {
    const { lib } = libbpf();
    const out: ProgramInfo[] = [];
    // struct bpf_prog_info: type@0 id@4 tag[8]@8 jited_prog_len@16 xlated_prog_len@20
    // jited_prog_insns@24 xlated_prog_insns@32 ... name[16]@64. A larger zeroed buffer
    // than the kernel's struct is accepted (the tail must be zero).
    const INFO_SIZE = 256;
    for (const o of this.objects) {
      for (let p = lib.bpf_object__next_program(o.obj, null); p; p = lib.bpf_object__next_program(o.obj, p)) {
        const fd = lib.bpf_program__fd(p);
        if (fd < 0) continue; // not loaded (an optional program left out)
        const name = lib.bpf_program__name(p);
        const info = Buffer.alloc(INFO_SIZE);
        const len = u32(INFO_SIZE);
        let rc = lib.bpf_obj_get_info_by_fd(fd, info, len);
        if (rc < 0) throw new SensorError('VIGIL_BPF_MAP', `cannot read back BPF program ${name} of ${o.name}: ${libbpfError(rc)}`);
        const xlatedLen = info.readUInt32LE(20);
        const insns = Buffer.alloc(xlatedLen);
        const second = Buffer.alloc(INFO_SIZE);
        second.writeUInt32LE(xlatedLen, 20);
        second.writeBigUInt64LE(BigInt(koffi.address(insns)), 32);
        rc = lib.bpf_obj_get_info_by_fd(fd, second, u32(INFO_SIZE));
        if (rc < 0) throw new SensorError('VIGIL_BPF_MAP', `cannot read the instructions of BPF program ${name} of ${o.name}: ${libbpfError(rc)}`);
        out.push({
          object: o.name, name, id: info.readUInt32LE(4), type: info.readUInt32LE(0), tag: info.subarray(8, 16).toString('hex'),
          xlatedBytes: xlatedLen, xlatedSha256: createHash('sha256').update(insns.subarray(0, second.readUInt32LE(20))).digest('hex'),
        });
      }
    }
    return out;
  }

  /**
   * The links this sensor made (one per program), as the kernel reports them at the time
   * of the call: the baseline the self-measurement re-checks by kernel id
   * (kernelLink, kernelProgram), because a link fd the agent holds can be closed behind
   * its back (a root attacker injecting close(2)) and its number reused. Empty after
   * detach(): the agent took its programs off on purpose.
   */
  attachments(): AttachmentInfo[] {
    const { lib } = libbpf();
    const out: AttachmentInfo[] = [];
    for (const o of this.objects) {
      let i = 0;
      for (let p = lib.bpf_object__next_program(o.obj, null); p; p = lib.bpf_object__next_program(o.obj, p)) {
        const link = o.links[i++];
        if (!link) continue;
        const info = linkInfoByFd(lib.bpf_link__fd(link));
        const prog = info ? kernelProgram(info.progId) : null;
        if (!info || !prog) throw new SensorError('VIGIL_BPF_MAP', `cannot read back the link of BPF program ${lib.bpf_program__name(p)} of ${o.name}`);
        out.push({ object: o.name, program: lib.bpf_program__name(p), section: lib.bpf_program__section_name(p), ...info, tag: prog.tag });
      }
    }
    return out;
  }

  /** True once detach() or close() took the programs off (not an attack). */
  get detached(): boolean { return this.closed || this.objects.every((o) => o.links.length === 0); }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    const { lib } = libbpf();
    for (const o of this.objects.reverse()) lib.bpf_object__close(o.obj);
  }
}

const STDIO_CODES: Readonly<Record<string, number>> = STDIO_KIND;
/** Bit mask of stdio kinds by name (inet, tty, ...). */
function stdioMask(kinds: readonly string[]): number {
  let m = 0;
  for (const k of kinds) {
    const code = STDIO_CODES[k.toUpperCase()];
    if (code === undefined) throw new SensorError('VIGIL_BPF_MAP', `kernel clause: unknown stdio kind ${k}`);
    m |= 1 << code;
  }
  return m >>> 0;
}

/** Key of vigil_kstrings: exact entries hold the string and its NUL, suffix ones the string reversed. */
function enforceStringKey(set: number, text: string, op: 'eq' | 'prefix' | 'suffix'): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length >= ENFORCE.str) throw new SensorError('VIGIL_BPF_MAP', `kernel string '${text}' is longer than ${ENFORCE.str - 1} bytes`);
  if (op === 'suffix') bytes = Buffer.from(bytes).reverse();
  const k = Buffer.alloc(ENFORCE.strKeySize);
  const used = op === 'eq' ? bytes.length + 1 : bytes.length;
  k.writeUInt32LE(32 + 8 * used, 0);
  k.writeUInt32LE(set, 4);
  bytes.copy(k, 8);
  return k;
}

/** A BPF link as the kernel reports it (struct bpf_link_info; the hook's fields by link type). */
export interface KernelLink {
  linkId: number;
  /** BPF_LINK_TYPE_*: 1 raw tracepoint, 2 tracing (tp_btf, fentry...), 7 perf event... */
  linkType: number;
  progId: number;
  /** Tracing links: the attach type (23: BPF_TRACE_RAW_TP) and the BTF object and type they hook. */
  attachType: number;
  targetObjId: number;
  targetBtfId: number;
  /** Raw tracepoint links and perf-event tracepoint links: the tracepoint's name. */
  tpName: string;
}

/** One link the sensor made (BpfSensor.attachments). */
export interface AttachmentInfo extends KernelLink { object: string; program: string; section: string; tag: string }

/** A program as the kernel reports it by id. */
export interface KernelProgram { progId: number; type: number; tag: string; name: string }

const ENOENT = 2;

function linkInfoByFd(fd: number): KernelLink | null {
  const { lib } = libbpf();
  // struct bpf_link_info: type@0 id@4 prog_id@8, the union at 16: tracing {attach_type@16,
  // target_obj_id@20, target_btf_id@24}; raw_tracepoint {tp_name@16 (pointer), len@24};
  // perf_event {type@16, tracepoint {tp_name@24, name_len@32}} (BPF_PERF_EVENT_TRACEPOINT = 5).
  const INFO_SIZE = 96;
  const info = Buffer.alloc(INFO_SIZE);
  if (lib.bpf_obj_get_info_by_fd(fd, info, u32(INFO_SIZE)) < 0) return null;
  const linkType = info.readUInt32LE(0);
  const out: KernelLink = { linkId: info.readUInt32LE(4), linkType, progId: info.readUInt32LE(8), attachType: 0, targetObjId: 0, targetBtfId: 0, tpName: '' };
  if (linkType === 2) {
    out.attachType = info.readUInt32LE(16);
    out.targetObjId = info.readUInt32LE(20);
    out.targetBtfId = info.readUInt32LE(24);
  } else if (linkType === 1 || (linkType === 7 && info.readUInt32LE(16) === 5)) {
    // A second call with a buffer for the name.
    const name = Buffer.alloc(256);
    const again = Buffer.alloc(INFO_SIZE);
    const [ptrAt, lenAt] = linkType === 1 ? [16, 24] : [24, 32];
    again.writeBigUInt64LE(BigInt(koffi.address(name)), ptrAt);
    again.writeUInt32LE(name.length, lenAt);
    if (lib.bpf_obj_get_info_by_fd(fd, again, u32(INFO_SIZE)) === 0) {
      const end = name.indexOf(0);
      out.tpName = name.toString('utf8', 0, end < 0 ? name.length : end);
    }
  }
  return out;
}

/** The link with this kernel id, or null when the kernel has none (it was detached: its last holder closed it). */
export function kernelLink(id: number): KernelLink | null {
  const { lib } = libbpf();
  const fd = lib.bpf_link_get_fd_by_id(id);
  if (fd < 0) {
    if (-fd === ENOENT) return null;
    throw new SensorError('VIGIL_BPF_MAP', `cannot open BPF link ${id}: ${libbpfError(fd)}`);
  }
  try { return linkInfoByFd(fd); } finally { closeSync(fd); }
}

/** The program with this kernel id, or null when it is gone. */
export function kernelProgram(id: number): KernelProgram | null {
  const { lib } = libbpf();
  const fd = lib.bpf_prog_get_fd_by_id(id);
  if (fd < 0) {
    if (-fd === ENOENT) return null;
    throw new SensorError('VIGIL_BPF_MAP', `cannot open BPF program ${id}: ${libbpfError(fd)}`);
  }
  try {
    // struct bpf_prog_info: type@0 id@4 tag[8]@8 ... name[16]@64.
    const info = Buffer.alloc(256);
    if (lib.bpf_obj_get_info_by_fd(fd, info, u32(256)) < 0) return null;
    const end = info.indexOf(0, 64);
    return { progId: info.readUInt32LE(4), type: info.readUInt32LE(0), tag: info.subarray(8, 16).toString('hex'), name: info.toString('utf8', 64, end < 0 || end > 80 ? 80 : end) };
  } finally { closeSync(fd); }
}

/** Every link the kernel holds (all owners), by id. */
export function kernelLinks(): KernelLink[] {
  const { lib } = libbpf();
  const out: KernelLink[] = [];
  const next = Buffer.alloc(4);
  for (let id = 0; lib.bpf_link_get_next_id(id, next) === 0; ) {
    id = next.readUInt32LE(0);
    const l = kernelLink(id);
    if (l) out.push(l);
  }
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** libbpf sets errno when it returns NULL; koffi reads the calling thread's errno. */
function koffiErrno(): number {
  return koffi.errno();
}

let possibleCpus: number | undefined;
/** Number of possible CPUs: the width of every per-CPU map value. */
export function possibleCpuCount(): number {
  if (possibleCpus !== undefined) return possibleCpus;
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let max = 0;
  for (const part of text.split(',')) {
    const [, hi] = part.split('-');
    max = Math.max(max, Number(hi ?? part));
  }
  possibleCpus = max + 1;
  return possibleCpus;
}

/** Inode of a namespace file such as /proc/1/ns/mnt. */
export function namespaceInode(path: string): number {
  return statSync(path).ino;
}

/**
 * A namespace of the host (mnt or pid): init's, or the agent's own where init's cannot be
 * read (some sandboxes make pid 1 non-dumpable). The agent must then run in the host's
 * namespaces, which is where it has to run anyway to see /proc and the runtime.
 */
export function hostNamespace(type: 'mnt' | 'pid'): number {
  try {
    return namespaceInode(`/proc/1/ns/${type}`);
  } catch {
    return namespaceInode(`/proc/self/ns/${type}`);
  }
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}
