// What the kernel holds beyond the agent's own programs, for the watch on vigil's hooks
// (programs.ts): BPF programs and links by id (the kernel allocates both ids in increasing
// order, so a re-check asks only for the ids after the last one it saw), a program's
// identity (type, name, tag, the uid that loaded it), and which processes hold it: a
// program fd or a link fd naming it in /proc/PID/fdinfo, or a perf event it was attached
// to with PERF_EVENT_IOC_SET_BPF (no BPF link: found with BPF_TASK_FD_QUERY, as bpftool
// perf does), which also names the hook such a program runs on.
//
// Its own koffi bindings of Debian's libbpf.so.1 (the sensor's cover what it loads): listing
// program ids and asking a task's fd which program it runs are needed only here.
import koffi from 'koffi';
import { closeSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { kernelLink, type KernelLink } from '../sensor/index.js';

interface Lib {
  bpf_prog_get_next_id(start: number, next: Buffer): number;
  bpf_link_get_next_id(start: number, next: Buffer): number;
  bpf_prog_get_fd_by_id(id: number): number;
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, len: Buffer): number;
  bpf_task_fd_query(pid: number, fd: number, flags: number, buf: Buffer, bufLen: Buffer, progId: Buffer, fdType: Buffer, probeOffset: Buffer, probeAddr: Buffer): number;
}
let lib: Lib | undefined;
function bpf(): Lib {
  if (lib) return lib;
  const h = koffi.load('libbpf.so.1');
  lib = {
    bpf_prog_get_next_id: h.func('int bpf_prog_get_next_id(uint32_t start, _Out_ uint32_t *next)'),
    bpf_link_get_next_id: h.func('int bpf_link_get_next_id(uint32_t start, _Out_ uint32_t *next)'),
    bpf_prog_get_fd_by_id: h.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_obj_get_info_by_fd: h.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ void *len)'),
    bpf_task_fd_query: h.func('int bpf_task_fd_query(int pid, int fd, uint32_t flags, _Out_ void *buf, _Inout_ void *buf_len, _Out_ void *prog_id, _Out_ void *fd_type, _Out_ void *probe_offset, _Out_ void *probe_addr)'),
  } as Lib;
  return lib;
}

/** BPF_PROG_TYPE_* names (include/uapi/linux/bpf.h). */
const PROG_TYPES: Readonly<Record<number, string>> = {
  1: 'socket_filter', 2: 'kprobe', 3: 'sched_cls', 4: 'sched_act', 5: 'tracepoint', 6: 'xdp', 7: 'perf_event', 8: 'cgroup_skb',
  9: 'cgroup_sock', 10: 'lwt_in', 11: 'lwt_out', 12: 'lwt_xmit', 13: 'sock_ops', 14: 'sk_skb', 15: 'cgroup_device', 16: 'sk_msg',
  17: 'raw_tracepoint', 18: 'cgroup_sock_addr', 19: 'lwt_seg6local', 20: 'lirc_mode2', 21: 'sk_reuseport', 22: 'flow_dissector',
  23: 'cgroup_sysctl', 24: 'raw_tracepoint_writable', 25: 'cgroup_sockopt', 26: 'tracing', 27: 'struct_ops', 28: 'ext', 29: 'lsm',
  30: 'sk_lookup', 31: 'syscall', 32: 'netfilter',
};
export function progTypeName(t: number): string { return PROG_TYPES[t] ?? `type ${t}`; }

/**
 * The program types that run on tracepoints and probes: what can sit on a hook of vigil's
 * (ext: freplace, which replaces a function of another BPF program, is counted with them).
 */
export const TRACING_PROG_TYPES: ReadonlySet<number> = new Set([2, 5, 7, 17, 24, 26, 28]);

/** BPF_LINK_TYPE_* names. */
const LINK_TYPES: Readonly<Record<number, string>> = {
  1: 'raw_tracepoint', 2: 'tracing', 3: 'cgroup', 4: 'iter', 5: 'netns', 6: 'xdp', 7: 'perf_event', 8: 'kprobe_multi', 9: 'struct_ops',
  10: 'netfilter', 11: 'tcx', 12: 'uprobe_multi', 13: 'netkit', 14: 'sockmap',
};
export function linkTypeName(t: number): string { return LINK_TYPES[t] ?? `type ${t}`; }

/** BPF_FD_TYPE_* of BPF_TASK_FD_QUERY. */
const FD_TYPES = ['raw_tracepoint', 'tracepoint', 'kprobe', 'kretprobe', 'uprobe', 'uretprobe'];

export interface ProgramDetail {
  progId: number;
  type: number;
  name: string;
  tag: string;
  /** The uid of the process that loaded it (bpf_prog_info.created_by_uid). */
  uid: number;
}

/** One process that holds a program: through program fds, link fds, or perf events the program is attached to ("program fd 3, perf event fd 4"). */
export interface ProgramHolder { pid: number; comm: string; exe: string; via: string }
/** A perf event a program was attached to without a BPF link: what it names (a tracepoint's or a function's name). */
export interface PerfAttachment { pid: number; fd: number; kind: string; name: string }

const next = Buffer.alloc(4);
function idsAfter(getNext: (start: number, out: Buffer) => number, after: number): number[] {
  const out: number[] = [];
  for (let id = after; getNext(id, next) === 0; ) {
    id = next.readUInt32LE(0);
    out.push(id);
  }
  return out;
}

/** Program ids greater than `after`, ascending. */
export function programIdsAfter(after: number): number[] { return idsAfter((s, o) => bpf().bpf_prog_get_next_id(s, o), after); }
/** Link ids greater than `after`, ascending. */
export function linkIdsAfter(after: number): number[] { return idsAfter((s, o) => bpf().bpf_link_get_next_id(s, o), after); }

/** The program with this id (null when it is gone or cannot be opened). */
export function programDetail(id: number): ProgramDetail | null {
  const b = bpf();
  const fd = b.bpf_prog_get_fd_by_id(id);
  if (fd < 0) return null;
  try {
    // struct bpf_prog_info: type@0 id@4 tag[8]@8 ... load_time@40 created_by_uid@48 ... name[16]@64.
    const info = Buffer.alloc(256);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(info.length);
    if (b.bpf_obj_get_info_by_fd(fd, info, len) < 0) return null;
    const end = info.indexOf(0, 64);
    return {
      progId: info.readUInt32LE(4), type: info.readUInt32LE(0), tag: info.subarray(8, 16).toString('hex'), uid: info.readUInt32LE(48),
      name: info.toString('utf8', 64, end < 0 || end > 80 ? 80 : end),
    };
  } finally { closeSync(fd); }
}

export function linkInfo(id: number): KernelLink | null {
  try { return kernelLink(id); } catch { return null; }
}

function processName(pid: number): { comm: string; exe: string } {
  let comm = '';
  let exe = '';
  try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone */ }
  try { exe = readlinkSync(`/proc/${pid}/exe`); } catch { /* gone, or a kernel thread */ }
  return { comm, exe };
}

/**
 * Who holds each of the programs `progIds`, and the perf events each is attached to
 * without a link: one walk of every process's fds (done when a new program is found, or
 * once at start for the programs already on the agent's hooks; never on the regular
 * re-check). At most `max` holders per program; processes that exit during the walk are
 * skipped.
 */
export function whereArePrograms(progIds: readonly number[], max = 8): Map<number, { holders: ProgramHolder[]; perf: PerfAttachment[] }> {
  const out = new Map<number, { holders: ProgramHolder[]; perf: PerfAttachment[] }>();
  for (const id of progIds) out.set(id, { holders: [], perf: [] });
  let pids: string[];
  try { pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return out; }
  const b = bpf();
  const buf = Buffer.alloc(256);
  const bufLen = Buffer.alloc(4);
  const progOut = Buffer.alloc(4);
  const fdType = Buffer.alloc(4);
  const off = Buffer.alloc(8);
  const addr = Buffer.alloc(8);
  for (const p of pids) {
    const pid = Number(p);
    let fds: string[];
    try { fds = readdirSync(`/proc/${p}/fd`); } catch { continue; }
    const via = new Map<number, string[]>();
    const note = (id: number, what: string) => { const l = via.get(id) ?? []; l.push(what); via.set(id, l); };
    for (const f of fds) {
      let target: string;
      try { target = readlinkSync(`/proc/${p}/fd/${f}`); } catch { continue; }
      const fd = Number(f);
      if (target === 'anon_inode:bpf-prog' || target === 'anon_inode:bpf_link') {
        let info = '';
        try { info = readFileSync(`/proc/${p}/fdinfo/${f}`, 'utf8'); } catch { continue; }
        const id = Number(/^prog_id:\s+(\d+)$/m.exec(info)?.[1] ?? -1);
        if (out.has(id)) note(id, `${target === 'anon_inode:bpf-prog' ? 'program' : 'link'} fd ${fd}`);
      } else if (target === 'anon_inode:[perf_event]') {
        bufLen.writeUInt32LE(buf.length);
        buf.fill(0);
        if (b.bpf_task_fd_query(pid, fd, 0, buf, bufLen, progOut, fdType, off, addr) !== 0) continue; // no program on it
        const id = progOut.readUInt32LE(0);
        const w = out.get(id);
        if (!w) continue;
        const end = buf.indexOf(0);
        w.perf.push({ pid, fd, kind: FD_TYPES[fdType.readUInt32LE(0)] ?? `fd type ${fdType.readUInt32LE(0)}`, name: buf.toString('utf8', 0, end < 0 ? buf.length : end) });
        note(id, `perf event fd ${fd}`);
      }
    }
    if (via.size === 0) continue;
    const name = processName(pid);
    for (const [id, v] of via) {
      const w = out.get(id);
      if (w && w.holders.length < max) w.holders.push({ pid, ...name, via: v.join(', ') });
    }
  }
  return out;
}
