// What an io_uring record means, as event fields. A request submitted through a ring is
// reported like the system call it stands for, named `io_uring:<op>` (so a rule can tell
// the two apart, and the default lists name both), with the same argument names and
// kinds: `io_uring:openat` is a file event with name, flags, mode and path. The ring's
// own calls are events of kind io_uring: io_uring_setup and io_uring_register.
import { posix } from 'node:path';
import { ADDRESS_FAMILIES, AT_FLAGS, RENAME_FLAGS, SOCKET_TYPES, errnoName, flagNames, modeString, openFlags } from './constants.js';
import type { EventArgs, IoUringRecord } from './model.js';
import type { Described } from './describe.js';
import { decodeSockaddr } from './net.js';
import { URING_OP } from './layout.js';

const AT_FDCWD = -100;

/** IORING_OP_* numbers of the requests the kernel side reports, with the call each stands for. */
export const URING_OPS: Readonly<Record<number, { name: string; kind: 'file' | 'network' }>> = {
  13: { name: 'accept', kind: 'network' },
  16: { name: 'connect', kind: 'network' },
  18: { name: 'openat', kind: 'file' },
  28: { name: 'openat2', kind: 'file' },
  35: { name: 'renameat', kind: 'file' },
  36: { name: 'unlinkat', kind: 'file' },
  37: { name: 'mkdirat', kind: 'file' },
  38: { name: 'symlinkat', kind: 'file' },
  39: { name: 'linkat', kind: 'file' },
  45: { name: 'socket', kind: 'network' },
  56: { name: 'bind', kind: 'network' },
  57: { name: 'listen', kind: 'network' },
};

/** io_uring_register opcodes (include/uapi/linux/io_uring.h), the ones worth a name. */
const REGISTER_OPS: Readonly<Record<number, string>> = {
  0: 'IORING_REGISTER_BUFFERS', 1: 'IORING_UNREGISTER_BUFFERS', 2: 'IORING_REGISTER_FILES', 3: 'IORING_UNREGISTER_FILES',
  4: 'IORING_REGISTER_EVENTFD', 5: 'IORING_UNREGISTER_EVENTFD', 6: 'IORING_REGISTER_FILES_UPDATE', 7: 'IORING_REGISTER_EVENTFD_ASYNC',
  8: 'IORING_REGISTER_PROBE', 9: 'IORING_REGISTER_PERSONALITY', 10: 'IORING_UNREGISTER_PERSONALITY', 11: 'IORING_REGISTER_RESTRICTIONS',
  12: 'IORING_REGISTER_ENABLE_RINGS', 13: 'IORING_REGISTER_FILES2', 14: 'IORING_REGISTER_FILES_UPDATE2', 15: 'IORING_REGISTER_BUFFERS2',
  16: 'IORING_REGISTER_BUFFERS_UPDATE', 17: 'IORING_REGISTER_IOWQ_AFF', 18: 'IORING_UNREGISTER_IOWQ_AFF', 19: 'IORING_REGISTER_IOWQ_MAX_WORKERS',
  20: 'IORING_REGISTER_RING_FDS', 21: 'IORING_UNREGISTER_RING_FDS', 22: 'IORING_REGISTER_PBUF_RING', 23: 'IORING_UNREGISTER_PBUF_RING',
  24: 'IORING_REGISTER_SYNC_CANCEL', 25: 'IORING_REGISTER_FILE_ALLOC_RANGE',
};

/** io_uring_setup flags (IORING_SETUP_*). */
const SETUP_FLAGS: ReadonlyArray<readonly [number, string]> = [
  [1, 'IORING_SETUP_IOPOLL'], [2, 'IORING_SETUP_SQPOLL'], [4, 'IORING_SETUP_SQ_AFF'], [8, 'IORING_SETUP_CQSIZE'],
  [16, 'IORING_SETUP_CLAMP'], [32, 'IORING_SETUP_ATTACH_WQ'], [64, 'IORING_SETUP_R_DISABLED'], [128, 'IORING_SETUP_SUBMIT_ALL'],
  [256, 'IORING_SETUP_COOP_TASKRUN'], [512, 'IORING_SETUP_TASKRUN_FLAG'], [1024, 'IORING_SETUP_SQE128'], [2048, 'IORING_SETUP_CQE32'],
  [4096, 'IORING_SETUP_SINGLE_ISSUER'], [8192, 'IORING_SETUP_DEFER_TASKRUN'], [16384, 'IORING_SETUP_NO_MMAP'],
  [32768, 'IORING_SETUP_REGISTERED_FD_ONLY'], [65536, 'IORING_SETUP_NO_SQARRAY'],
];

function dirfd(fd: number): string | number {
  return fd === AT_FDCWD ? `${AT_FDCWD}(AT_FDCWD)` : fd;
}

function setupFlags(v: number): string {
  if (v === 0) return '0';
  const names = SETUP_FLAGS.filter(([bit]) => (v & bit) !== 0).map(([, n]) => n);
  const rest = SETUP_FLAGS.reduce((left, [bit]) => left & ~bit, v);
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names.join('|');
}

function absolute(name: string, base: string | undefined): string | undefined {
  if (name.startsWith('/')) return posix.normalize(name);
  return base === undefined ? undefined : posix.normalize(posix.join(base, name));
}

export function describeIoUring(r: IoUringRecord): Described {
  const args: EventArgs = {};
  if (r.sqpoll) args['sqpoll'] = true;
  if (r.op === URING_OP.SETUP) {
    Object.assign(args, { fd: r.fd, sq_entries: Number(r.arg0), cq_entries: Number(r.arg1), flags: setupFlags(Number(r.arg2)) });
    return { kind: 'io_uring', syscall: 'io_uring_setup', args, ret: r.fd };
  }
  if (r.op === URING_OP.REGISTER) {
    const ret = Number(r.ret);
    const error = errnoName(ret);
    Object.assign(args, { opcode: REGISTER_OPS[Number(r.arg0)] ?? String(r.arg0), nr_files: Number(r.arg1), nr_bufs: Number(r.arg2) });
    return { kind: 'io_uring', syscall: 'io_uring_register', args, ret, ...(error ? { error } : {}) };
  }
  const op = URING_OPS[r.op];
  const syscall = `io_uring:${op?.name ?? `op${r.op}`}`;
  const kind = op?.kind ?? 'io_uring';
  const name = r.names[0];
  const name2 = r.names[1];
  switch (op?.name) {
    case 'openat':
    case 'openat2':
      Object.assign(args, { dirfd: dirfd(r.fd), name: name ?? '', flags: openFlags(Number(r.arg0 & 0xffffffffn)), mode: modeString(Number(r.arg1 & 0xffffn)) });
      break;
    case 'unlinkat':
      Object.assign(args, { dirfd: dirfd(r.fd), name: name ?? '', flags: flagNames(Number(r.arg0 & 0xffffffffn), AT_FLAGS) });
      break;
    case 'mkdirat':
      Object.assign(args, { dirfd: dirfd(r.fd), name: name ?? '', mode: modeString(Number(r.arg0 & 0xffffn)) });
      break;
    case 'renameat':
      Object.assign(args, { olddirfd: dirfd(r.fd), oldname: name ?? '', newdirfd: dirfd(Number(BigInt.asIntN(32, r.arg1))), newname: name2 ?? '', flags: flagNames(Number(r.arg0 & 0xffffffffn), RENAME_FLAGS) });
      break;
    case 'linkat':
      Object.assign(args, { olddirfd: dirfd(r.fd), oldname: name ?? '', newdirfd: dirfd(Number(BigInt.asIntN(32, r.arg1))), newname: name2 ?? '', flags: flagNames(Number(r.arg0 & 0xffffffffn), AT_FLAGS) });
      break;
    case 'symlinkat':
      // The target is any text; the link is the name made.
      Object.assign(args, { target: name ?? '', newdirfd: dirfd(Number(BigInt.asIntN(32, r.arg1))), linkpath: name2 ?? '' });
      break;
    case 'socket':
      Object.assign(args, {
        domain: ADDRESS_FAMILIES[Number(r.arg0)] ?? String(r.arg0),
        type: SOCKET_TYPES[Number(r.arg1 & 0xfn)] ?? String(r.arg1),
        protocol: Number(r.arg2),
      });
      break;
    default:
      args['fd'] = r.fd;
  }
  // The absolute path of the first name; for a second name, only when it is absolute or
  // relative to the same directory (the kernel side reads one directory).
  if (op?.kind === 'file' && name !== undefined && op.name !== 'symlinkat') {
    const path = absolute(name, r.base);
    if (path !== undefined) args['path'] = path;
  }
  if (name2 !== undefined && (op?.name === 'renameat' || op?.name === 'linkat' || op?.name === 'symlinkat')) {
    const sameDir = Number(BigInt.asIntN(32, r.arg1)) === (op.name === 'symlinkat' ? AT_FDCWD : r.fd);
    const p = name2.startsWith('/') ? absolute(name2, undefined) : sameDir ? absolute(name2, r.base) : undefined;
    if (p !== undefined) args[op.name === 'symlinkat' ? 'path' : 'new_path'] = p;
  }
  if (r.nameCut) args['string_truncated'] = true;
  if (r.baseCut) args['path_truncated'] = true;
  if (r.addr) {
    const sa = decodeSockaddr(r.addr);
    if (sa) {
      args['addr_family'] = sa.family;
      if (sa.port !== undefined) {
        args['addr'] = sa.family === 'AF_INET6' ? `[${sa.address}]:${sa.port}` : `${sa.address}:${sa.port}`;
        args['port'] = sa.port;
      } else {
        args['addr'] = sa.address;
      }
    }
  }
  // Reported at submission: the result is not known here.
  return { kind, syscall, args, ret: null };
}
