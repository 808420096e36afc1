// Decodes the binary records of bpf/events.h into RawRecord values. A record that is
// shorter than its kind needs, or whose declared size disagrees with the bytes that
// came, is reported as a DecodeError and skipped: one bad record never stops a batch.
import {
  ARGS_MAX, BLOB_MAX, CAPABILITY_LAYOUT, CGROUP_LAYOUT, COMM_LEN, EXEC_LAYOUT, EXIT_LAYOUT, FILENAME_MAX, FLAG_CONTAINER_SETUP, FLAG_EXE_CUT, FLAG_KERNEL_KILLED, FLAG_KILL_FAILED, FLAG_TRUNCATED, FORK_LAYOUT, HEADER_LAYOUT,
  IO_URING_LAYOUT, NAME_MAX, PATH_MAX, RECORD_KIND, SOCK_LAYOUT, URING_FLAG, STDIO_KIND, STR_MAX, SYSCALL_FLAG, SYSCALL_LAYOUT, TCP_STATE_LAYOUT,
} from './layout.js';
import type { RawRecord, SockInfo, StdioKind, SyscallRecord, TaskContext } from './model.js';
import { ipv4, ipv6 } from './net.js';
import { utf8 } from './utf8.js';

export class DecodeError extends Error {
  readonly code = 'VIGIL_BAD_RECORD';
  constructor(message: string, readonly offset: number) {
    super(message);
    this.name = 'DecodeError';
  }
}

/** StdioKind by the kernel's code (enum vigil_stdio_kind); a code this side does not know is 'other'. */
const STDIO_NAMES: readonly StdioKind[] = (() => {
  const names: StdioKind[] = [];
  for (const [name, code] of Object.entries(STDIO_KIND)) names[code] = name.toLowerCase() as StdioKind;
  return names;
})();

function cString(buf: Buffer, start: number, max: number): string {
  const end = buf.indexOf(0, start);
  const stop = end < 0 || end > start + max ? start + max : end;
  return utf8(buf, start, stop);
}

function kernelKillOf(flags: number): TaskContext['kernelKill'] {
  if ((flags & (FLAG_KERNEL_KILLED | FLAG_KILL_FAILED)) === 0) return undefined;
  return (flags & FLAG_KERNEL_KILLED) !== 0 ? 'done' : 'failed';
}

export function decodeTask(buf: Buffer, o: number): TaskContext {
  const H = HEADER_LAYOUT;
  return {
    timeNs: buf.readBigUInt64LE(o + H.time_ns),
    pid: buf.readUInt32LE(o + H.pid),
    tgid: buf.readUInt32LE(o + H.tgid),
    nsPid: buf.readUInt32LE(o + H.ns_pid),
    ppid: buf.readUInt32LE(o + H.ppid),
    nsPpid: buf.readUInt32LE(o + H.ns_ppid),
    uid: buf.readUInt32LE(o + H.uid),
    gid: buf.readUInt32LE(o + H.gid),
    mntNs: buf.readUInt32LE(o + H.mnt_ns),
    pidNs: buf.readUInt32LE(o + H.pid_ns),
    capEffective: buf.readBigUInt64LE(o + H.cap_effective),
    cgroupId: buf.readBigUInt64LE(o + H.cgroup_id),
    containerKey: buf.readBigUInt64LE(o + H.container_key),
    comm: cString(buf, o + H.comm, COMM_LEN),
    parentComm: cString(buf, o + H.parent_comm, COMM_LEN),
    truncated: (buf.readUInt16LE(o + H.flags) & FLAG_TRUNCATED) !== 0,
    containerSetup: (buf.readUInt16LE(o + H.flags) & FLAG_CONTAINER_SETUP) !== 0,
    kernelKill: kernelKillOf(buf.readUInt16LE(o + H.flags)),
    // The in-kernel kill marked the task (bpf/enforce.bpf.c): the pipeline gives the event its response.
    kernelRule: (buf.readUInt16LE(o + H.flags) & FLAG_KERNEL_KILLED) !== 0 ? buf.readUInt32LE(o + H.kernel_rule) : 0,
  };
}

/** Decodes one record that occupies buf[o, o+len). */
export function decodeRecord(buf: Buffer, o: number, len: number): RawRecord {
  if (len < HEADER_LAYOUT.size) throw new DecodeError(`record of ${len} bytes is shorter than the ${HEADER_LAYOUT.size}-byte header`, o);
  const kind = buf.readUInt16LE(o + HEADER_LAYOUT.kind);
  const declared = buf.readUInt32LE(o + HEADER_LAYOUT.size_field);
  if (declared !== len) throw new DecodeError(`record of kind ${kind} declares ${declared} bytes but ${len} arrived`, o);
  const need = (n: number) => {
    if (len < n) throw new DecodeError(`record of kind ${kind} has ${len} bytes, needs ${n}`, o);
  };
  const task = decodeTask(buf, o);
  switch (kind) {
    case RECORD_KIND.EXEC: {
      need(EXEC_LAYOUT.args);
      const fnLen = Math.min(buf.readUInt32LE(o + EXEC_LAYOUT.filename_len), FILENAME_MAX - 1);
      const argsLen = buf.readUInt32LE(o + EXEC_LAYOUT.args_len);
      const argsTotal = buf.readUInt32LE(o + EXEC_LAYOUT.args_total);
      const envLen = buf.readUInt32LE(o + EXEC_LAYOUT.env_len);
      if (argsLen > ARGS_MAX || EXEC_LAYOUT.args + argsLen > len) throw new DecodeError(`exec record carries ${argsLen} argv bytes, more than its size allows`, o);
      if (envLen > ARGS_MAX || (envLen > 0 && EXEC_LAYOUT.env + envLen !== len)) throw new DecodeError(`exec record carries ${envLen} environment bytes, more than its size allows`, o);
      const filename = utf8(buf, o + EXEC_LAYOUT.filename, o + EXEC_LAYOUT.filename + fnLen);
      const exeLen = buf.readUInt32LE(o + EXEC_LAYOUT.exe_len);
      if (exeLen > PATH_MAX) throw new DecodeError(`exec record carries a ${exeLen}-byte executable path, more than ${PATH_MAX}`, o);
      const exe = utf8(buf, o + EXEC_LAYOUT.exe, o + EXEC_LAYOUT.exe + exeLen);
      const exeTruncated = (buf.readUInt16LE(o + HEADER_LAYOUT.flags) & FLAG_EXE_CUT) !== 0;
      const nulList = (start: number, n: number) => {
        const list = utf8(buf, start, start + n).split('\0');
        if (list.length > 0 && list[list.length - 1] === '') list.pop();
        return list;
      };
      const argv = nulList(o + EXEC_LAYOUT.args, argsLen);
      const env = envLen > 0 ? nulList(o + EXEC_LAYOUT.env, envLen) : undefined;
      // Each list is judged by its own total: the header's truncated flag is set for either.
      const envTruncated = buf.readUInt32LE(o + EXEC_LAYOUT.env_total) > envLen;
      const stdio: StdioKind[] = [0, 1, 2].map((i) => STDIO_NAMES[buf.readUInt8(o + EXEC_LAYOUT.stdio + i)] ?? 'other');
      return { kind: 'exec', task, filename, exe, exeTruncated, argv, argvTruncated: argsTotal > argsLen, stdio, ...(env ? { env, envTruncated } : {}) };
    }
    case RECORD_KIND.FORK:
      need(FORK_LAYOUT.size);
      return { kind: 'fork', task, childPid: buf.readUInt32LE(o + FORK_LAYOUT.child_pid), childNsPid: buf.readUInt32LE(o + FORK_LAYOUT.child_ns_pid) };
    case RECORD_KIND.EXIT: {
      need(EXIT_LAYOUT.size);
      const status = buf.readInt32LE(o + EXIT_LAYOUT.exit_code);
      return { kind: 'exit', task, exitCode: (status >> 8) & 0xff, signal: status & 0x7f };
    }
    case RECORD_KIND.SYSCALL:
      need(SYSCALL_LAYOUT.data);
      return decodeSyscall(buf, o, len, task);
    case RECORD_KIND.CAPABILITY:
      need(CAPABILITY_LAYOUT.size);
      return { kind: 'capability', task, cap: buf.readInt32LE(o + CAPABILITY_LAYOUT.cap), ret: buf.readInt32LE(o + CAPABILITY_LAYOUT.ret) };
    case RECORD_KIND.TCP_STATE:
      need(TCP_STATE_LAYOUT.size);
      return {
        kind: 'tcp', task, oldState: buf.readInt32LE(o + TCP_STATE_LAYOUT.old_state), newState: buf.readInt32LE(o + TCP_STATE_LAYOUT.new_state),
        sock: decodeSock(buf, o + TCP_STATE_LAYOUT.sock),
      };
    case RECORD_KIND.CGROUP: {
      need(CGROUP_LAYOUT.path);
      const pathLen = buf.readUInt32LE(o + CGROUP_LAYOUT.path_len);
      if (pathLen >= PATH_MAX || CGROUP_LAYOUT.path + pathLen > len) throw new DecodeError(`cgroup record carries a ${pathLen}-byte path, more than its size allows`, o);
      return {
        kind: 'cgroup', task, id: buf.readBigUInt64LE(o + CGROUP_LAYOUT.id), level: buf.readUInt32LE(o + CGROUP_LAYOUT.level),
        path: utf8(buf, o + CGROUP_LAYOUT.path, o + CGROUP_LAYOUT.path + pathLen), pathTruncated: task.truncated,
      };
    }
    case RECORD_KIND.IO_URING:
      need(IO_URING_LAYOUT.data);
      return decodeIoUring(buf, o, len, task);
    default:
      throw new DecodeError(`unknown record kind ${kind}`, o);
  }
}

export function decodeSock(buf: Buffer, o: number): SockInfo {
  const S = SOCK_LAYOUT;
  const family = buf.readUInt16LE(o + S.family);
  const addr = (at: number) => (family === 10 ? ipv6(buf.subarray(o + at, o + at + 16)) : family === 2 ? ipv4(buf.subarray(o + at, o + at + 4)) : '');
  return {
    family,
    type: buf.readUInt16LE(o + S.type),
    protocol: buf.readUInt16LE(o + S.protocol),
    state: buf.readUInt16LE(o + S.state),
    localAddr: addr(S.local_addr),
    localPort: buf.readUInt16LE(o + S.local_port),
    remoteAddr: addr(S.remote_addr),
    remotePort: buf.readUInt16LE(o + S.remote_port),
  };
}

function decodeSyscall(buf: Buffer, o: number, len: number, task: TaskContext): SyscallRecord {
  const L = SYSCALL_LAYOUT;
  const sflags = buf.readUInt16LE(o + L.sflags);
  const lens = [buf.readUInt16LE(o + L.str_len), buf.readUInt16LE(o + L.str_len + 2)];
  const baseLen = buf.readUInt16LE(o + L.base_len);
  const fdPathLen = buf.readUInt16LE(o + L.fd_path_len);
  const blobLen = buf.readUInt16LE(o + L.blob_len);
  const knameLen = buf.readUInt16LE(o + L.kname_len);
  const base2Len = buf.readUInt16LE(o + L.base2_len);
  if ((lens[0] ?? 0) > STR_MAX || (lens[1] ?? 0) > STR_MAX || baseLen > PATH_MAX || fdPathLen > PATH_MAX || blobLen > BLOB_MAX || knameLen >= NAME_MAX || base2Len > PATH_MAX) {
    throw new DecodeError(`syscall record has a field longer than its bound (strings ${lens.join('/')}, base ${baseLen}, fd path ${fdPathLen}, blob ${blobLen}, kernel name ${knameLen}, second base ${base2Len})`, o);
  }
  const dataLen = (lens[0] ?? 0) + (lens[1] ?? 0) + baseLen + fdPathLen + blobLen + knameLen + base2Len;
  if (L.data + dataLen !== len) throw new DecodeError(`syscall record carries ${len - L.data} data bytes but its lengths add up to ${dataLen}`, o);
  let at = o + L.data;
  const take = (n: number) => {
    const part = buf.subarray(at, at + n);
    at += n;
    return part;
  };
  const strings = lens.map((n) => utf8(take(n)));
  while (strings.length > 0 && strings[strings.length - 1] === '') strings.pop();
  const base = baseLen ? utf8(take(baseLen)) : undefined;
  const fdPath = fdPathLen ? utf8(take(fdPathLen)) : undefined;
  const blob = blobLen ? Buffer.from(take(blobLen)) : undefined;
  const kernelName = knameLen ? utf8(take(knameLen)) : undefined;
  const base2 = base2Len ? utf8(take(base2Len)) : undefined;
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(buf.readBigUInt64LE(o + L.args + 8 * i));
  return {
    kind: 'syscall',
    task,
    nr: buf.readUInt32LE(o + L.nr),
    ret: buf.readBigInt64LE(o + L.ret),
    args,
    durationNs: buf.readBigUInt64LE(o + L.duration_ns),
    raw: (sflags & SYSCALL_FLAG.RAW) !== 0,
    strings,
    base,
    ...(base2 !== undefined ? { base2 } : {}),
    fdPath: (sflags & SYSCALL_FLAG.FD_PATH) !== 0 ? fdPath : undefined,
    blob,
    sock: (sflags & SYSCALL_FLAG.SOCK) !== 0 ? decodeSock(buf, o + L.sock) : undefined,
    pathCut: (sflags & SYSCALL_FLAG.PATH_CUT) !== 0,
    notEntered: (sflags & SYSCALL_FLAG.NOT_ENTERED) !== 0,
    stringCut: (sflags & SYSCALL_FLAG.STR_CUT) !== 0,
    abi: (sflags & SYSCALL_FLAG.COMPAT) !== 0 ? 'i386' : (sflags & SYSCALL_FLAG.X32) !== 0 ? 'x32' : 'x86_64',
    argsChanged: (sflags & SYSCALL_FLAG.ARGS_CHANGED) !== 0,
    readAtExit: (sflags & SYSCALL_FLAG.READ_AT_EXIT) !== 0,
    rootBase: (sflags & SYSCALL_FLAG.ROOT_BASE) !== 0,
    kernelName,
    kernelNameWhole: (sflags & SYSCALL_FLAG.KNAME_ROOTFS) !== 0,
    peerPath: (sflags & SYSCALL_FLAG.PEER_PATH) !== 0 ? fdPath : undefined,
    notAllowed: (sflags & SYSCALL_FLAG.NOT_ALLOWED) !== 0,
  };
}

function decodeIoUring(buf: Buffer, o: number, len: number, task: TaskContext): RawRecord {
  const L = IO_URING_LAYOUT;
  const lens = [buf.readUInt16LE(o + L.name_len), buf.readUInt16LE(o + L.name2_len)];
  const baseLen = buf.readUInt16LE(o + L.base_len);
  const addrLen = buf.readUInt16LE(o + L.addr_len);
  if ((lens[0] ?? 0) > STR_MAX || (lens[1] ?? 0) > STR_MAX || baseLen > PATH_MAX || addrLen > BLOB_MAX) {
    throw new DecodeError(`io_uring record has a field longer than its bound (names ${lens.join('/')}, base ${baseLen}, address ${addrLen})`, o);
  }
  const dataLen = (lens[0] ?? 0) + (lens[1] ?? 0) + baseLen + addrLen;
  if (L.data + dataLen !== len) throw new DecodeError(`io_uring record carries ${len - L.data} data bytes but its lengths add up to ${dataLen}`, o);
  let at = o + L.data;
  const take = (n: number) => {
    const part = buf.subarray(at, at + n);
    at += n;
    return part;
  };
  const names = lens.map((n) => utf8(take(n)));
  while (names.length > 0 && names[names.length - 1] === '') names.pop();
  const base = baseLen ? utf8(take(baseLen)) : undefined;
  const addr = addrLen ? Buffer.from(take(addrLen)) : undefined;
  const uflags = buf.readUInt16LE(o + L.uflags);
  return {
    kind: 'io_uring', task, op: buf.readUInt32LE(o + L.op), fd: buf.readInt32LE(o + L.fd),
    arg0: buf.readBigUInt64LE(o + L.arg0), arg1: buf.readBigUInt64LE(o + L.arg1), arg2: buf.readBigUInt64LE(o + L.arg2),
    ret: buf.readBigInt64LE(o + L.ret), names, base, addr,
    nameCut: (uflags & URING_FLAG.NAME_CUT) !== 0, baseCut: (uflags & URING_FLAG.BASE_CUT) !== 0, sqpoll: (uflags & URING_FLAG.SQPOLL) !== 0,
  };
}

/**
 * Splits a batch from the ring-buffer drain (records laid end to end, each starting
 * with its header) and decodes each one.
 */
export function decodeBatch(buf: Buffer, onRecord: (r: RawRecord) => void, onError: (e: DecodeError) => void): void {
  let o = 0;
  while (o + HEADER_LAYOUT.size <= buf.length) {
    const len = buf.readUInt32LE(o + HEADER_LAYOUT.size_field);
    if (len < HEADER_LAYOUT.size || o + len > buf.length) {
      onError(new DecodeError(`record at byte ${o} declares ${len} bytes, beyond the batch of ${buf.length}`, o));
      return;
    }
    try {
      onRecord(decodeRecord(buf, o, len));
    } catch (e) {
      if (e instanceof DecodeError) onError(e);
      else throw e;
    }
    o += len;
  }
  if (o !== buf.length) onError(new DecodeError(`${buf.length - o} stray bytes at the end of a batch`, o));
}
