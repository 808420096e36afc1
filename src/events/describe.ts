// What a system call, capability or TCP record means, as event fields: kind, syscall
// name, named and decoded arguments, return value and errno name. The argument
// types come from the same table (syscalls.ts) that drives the kernel capture.
import { posix } from 'node:path';
import {
  AT_FLAGS, BPF_COMMANDS, CLONE_FLAGS, IP_PROTOCOLS, MEMFD_FLAGS, MOUNT_FLAGS, PRCTL_OPTIONS, PTRACE_REQUESTS, RENAME_FLAGS,
  SOCKET_TYPES, ADDRESS_FAMILIES, TCP_STATES, UMOUNT_FLAGS, errnoName, flagNames, modeString, namedValue, openFlags,
} from './constants.js';
import { capabilityName } from './capabilities.js';
import type { EventArgs, EventKind, RawRecord, SockInfo, SyscallRecord } from './model.js';
import { decodeSockaddr } from './net.js';
import { i386SyscallName, specOf, syscallName, type ArgType, type SyscallSpec } from './syscalls.js';
import { describeIoUring } from './io-uring.js';

export interface Described {
  kind: EventKind;
  syscall: string;
  args: EventArgs;
  ret: number | null;
  error?: string;
}

const AT_FDCWD = -100;

function int32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

function uint32(v: bigint): number {
  return Number(BigInt.asUintN(32, v));
}

/** A path made absolute against its base directory, with `.` and `..` folded. */
export function absolutePath(name: string, base: string | undefined): string {
  if (name.startsWith('/')) return posix.normalize(name);
  if (base === undefined) return name;
  return posix.normalize(posix.join(base, name));
}

function sockArgs(prefix: string, s: SockInfo): EventArgs {
  const out: EventArgs = {
    [`${prefix}family`]: ADDRESS_FAMILIES[s.family] ?? String(s.family),
    [`${prefix}type`]: SOCKET_TYPES[s.type] ?? String(s.type),
  };
  if (s.family === 2 || s.family === 10) {
    out[`${prefix}protocol`] = IP_PROTOCOLS[s.protocol] ?? String(s.protocol);
    out[`${prefix}local`] = `${s.family === 10 ? `[${s.localAddr}]` : s.localAddr}:${s.localPort}`;
    if (s.remotePort || (s.remoteAddr !== '0.0.0.0' && s.remoteAddr !== '::')) {
      out[`${prefix}remote`] = `${s.family === 10 ? `[${s.remoteAddr}]` : s.remoteAddr}:${s.remotePort}`;
    }
  }
  return out;
}

function decodeArg(type: ArgType, v: bigint, r: SyscallRecord): string | number | undefined {
  switch (type) {
    case 'int': return int32(v);
    case 'uint': return Number(v);
    case 'hex': return `0x${v.toString(16)}`;
    case 'fd': return int32(v);
    case 'dirfd': return int32(v) === AT_FDCWD ? `${AT_FDCWD}(AT_FDCWD)` : int32(v);
    case 'str0': return r.strings[0] ?? '';
    case 'str1': return r.strings[1] ?? '';
    case 'oflags': return openFlags(uint32(v));
    case 'mode': return modeString(uint32(v));
    case 'atflags': return flagNames(uint32(v), AT_FLAGS);
    case 'renameflags': return flagNames(uint32(v), RENAME_FLAGS);
    case 'cloneflags': return flagNames(uint32(v), CLONE_FLAGS);
    case 'ptrace': return namedValue(Number(v), PTRACE_REQUESTS);
    case 'prctl': return namedValue(int32(v), PRCTL_OPTIONS);
    case 'bpfcmd': return namedValue(int32(v), BPF_COMMANDS);
    case 'memfdflags': return flagNames(uint32(v), MEMFD_FLAGS);
    case 'mountflags': return flagNames(uint32(v), MOUNT_FLAGS);
    case 'umountflags': return flagNames(uint32(v), UMOUNT_FLAGS);
    case 'family': return ADDRESS_FAMILIES[int32(v)] ?? String(int32(v));
    case 'socktype': {
      // The type in the low bits, SOCK_NONBLOCK and SOCK_CLOEXEC above.
      const t = uint32(v);
      const flags = [t & 0o4000 ? 'SOCK_NONBLOCK' : '', t & 0o2000000 ? 'SOCK_CLOEXEC' : ''].filter(Boolean);
      return [SOCKET_TYPES[t & 0xf] ?? String(t & 0xf), ...flags].join('|');
    }
    case 'sockaddr': return undefined; // from the blob, below
    case 'skip': return undefined;
  }
}

function describeBlob(spec: SyscallSpec, r: SyscallRecord, args: EventArgs): void {
  const blob = r.blob;
  if (!spec.blob || !blob) return;
  switch (spec.blob.as) {
    case 'sockaddr': {
      const sa = decodeSockaddr(blob);
      if (!sa) return;
      args['addr_family'] = sa.family;
      if (sa.port !== undefined) {
        args['addr'] = sa.family === 'AF_INET6' ? `[${sa.address}]:${sa.port}` : `${sa.address}:${sa.port}`;
        args['port'] = sa.port;
      } else {
        args['addr'] = sa.address;
      }
      break;
    }
    case 'open_how':
      if (blob.length >= 16) {
        args['flags'] = openFlags(Number(blob.readBigUInt64LE(0) & 0xffffffffn));
        args['mode'] = modeString(Number(blob.readBigUInt64LE(8) & 0xffffn));
      }
      break;
    case 'capdata':
      // struct __user_cap_data_struct[2]: effective, permitted, inheritable (u32 each, low then high)
      if (blob.length >= 24) {
        const cap = (i: number) => (BigInt(blob.readUInt32LE(12 + i * 4)) << 32n) | BigInt(blob.readUInt32LE(i * 4));
        args['effective'] = `0x${cap(0).toString(16)}`;
        args['permitted'] = `0x${cap(1).toString(16)}`;
        args['inheritable'] = `0x${cap(2).toString(16)}`;
      }
      break;
    case 'cstring': {
      const end = blob.indexOf(0);
      args[spec.args[spec.blob.arg]?.[0] ?? 'data'] = blob.subarray(0, end < 0 ? blob.length : end).toString('utf8');
      break;
    }
  }
}

/** The second name made absolute when its directory is known (see SyscallSpec.secondPath). */
function secondPath(spec: SyscallSpec, r: SyscallRecord): string | undefined {
  const second = spec.secondPath;
  const name = second ? r.strings[second.str] : undefined;
  if (!second || name === undefined || !spec.base) return undefined;
  if (name.startsWith('/')) return r.rootBase ? underRoot(name, r.base) : absolutePath(name, undefined);
  // The kernel read this name's own directory (the first name's was not read, or is another).
  if (r.base2 !== undefined) return absolutePath(name, r.base2);
  if (r.rootBase) return undefined; // the directory read is the chroot, not the one this name is relative to
  if (r.base === undefined) return undefined; // the first name was absolute: no directory was read
  const dirfd = (d: number | 'cwd') => (d === 'cwd' ? -100 : Number(BigInt.asIntN(32, r.args[d] ?? 0n)));
  return dirfd(second.dirfdArg) === dirfd(spec.base.dirfdArg) ? absolutePath(name, r.base) : undefined;
}

/** An absolute name inside a chroot, as a path from the namespace's root. */
function underRoot(name: string, root: string | undefined): string {
  return root === undefined ? posix.normalize(name) : posix.normalize(posix.join(root, name));
}

/** The final component of a name, as the kernel's dentry would be called ('' when there is none to compare). */
function lastComponent(name: string): string {
  const parts = name.split('/').filter((p) => p !== '');
  const last = parts[parts.length - 1] ?? '';
  return last === '.' || last === '..' ? '' : last;
}

function describeSyscall(r: SyscallRecord): Described {
  // A compat call is named by the i386 table (its open is 5, x86-64's fstat), an x32 one by x32:NAME.
  const name = r.abi === 'i386' ? i386SyscallName(r.nr) : r.abi === 'x32' ? syscallName((2 << 16) | (r.nr & 0xffff)) : syscallName(r.nr);
  const ret = Number(r.ret);
  const error = errnoName(ret);
  const found = specOf(name);
  const spec = found && (!found.i386Only || r.abi === 'i386') ? found : undefined;
  if (r.raw || !spec) {
    // The number too: a policy may key on either (and on the ABI: its numbers are its own).
    const args: EventArgs = { nr: r.nr };
    r.args.forEach((v, i) => (args[`arg${i}`] = `0x${v.toString(16)}`));
    if (r.abi !== 'x86_64') args['abi'] = r.abi;
    // Reported from sys_enter (bpf/allowlist.h): the call has not returned, ret means nothing.
    if (r.notAllowed) {
      args['not_in_allowlist'] = true;
      return { kind: 'syscall', syscall: name, args, ret: null };
    }
    return { kind: 'syscall', syscall: name, args, ret, ...(error ? { error } : {}) };
  }
  const args: EventArgs = {};
  spec.args.forEach(([argName, type], i) => {
    const v = decodeArg(type, r.args[i] ?? 0n, r);
    if (v !== undefined) args[argName] = v;
  });
  // The absolute path: the kernel's when the call produced an fd, else the name made
  // absolute against the directory it was relative to.
  const basedIndex = spec.base?.str ?? 0;
  const based = r.strings[basedIndex];
  let path: string | undefined;
  if (r.fdPath !== undefined) path = r.fdPath;
  else if (based !== undefined && spec.base) path = r.rootBase ? underRoot(based, r.base) : absolutePath(based, r.base);
  if (path !== undefined) args['path'] = path;
  const newPath = secondPath(spec, r);
  if (newPath !== undefined) args['new_path'] = newPath;
  if (r.pathCut) args['path_truncated'] = true;
  if (r.notEntered) args['refused_before_entry'] = true;
  if (r.stringCut) args['string_truncated'] = true;
  if (r.abi !== 'x86_64') args['abi'] = r.abi;
  if (r.rootBase && r.base !== undefined) args['chroot'] = r.base;
  // The kernel's own object: the inode the call changed. A different name than the one read
  // from user memory is a name swapped while the call ran, or a symbolic link followed.
  // On the container's root file system the kernel's path is the container's name of the
  // file, compared whole; on another mount (a bind mount, a volume) its leading part is the
  // mount's source, so the last component only.
  const readName = path ?? based;
  const kernelDiffers = r.kernelName !== undefined && readName !== undefined && lastComponent(readName) !== '' &&
    (r.kernelNameWhole ? posix.normalize(readName) !== r.kernelName : lastComponent(readName) !== lastComponent(r.kernelName));
  // Shown when it tells something: it differs from the name read (the same name says nothing new).
  if (kernelDiffers && r.kernelName !== undefined) args['kernel_name'] = r.kernelName;
  if (r.argsChanged || kernelDiffers) args['args_changed'] = true;
  // Not checked against a second read: a name whose page was not yet in memory at entry.
  if (r.readAtExit) args['read_at_exit'] = true;
  if (r.sock) Object.assign(args, sockArgs('sock_', r.sock));
  if (r.peerPath !== undefined) args['peer_path'] = r.peerPath;
  describeBlob(spec, r, args);
  return { kind: spec.category, syscall: name, args, ret, ...(error ? { error } : {}) };
}

/** Fields of an event for the record kinds that are not process life cycle. */
export function describeRecord(r: RawRecord): Described | undefined {
  switch (r.kind) {
    case 'syscall':
      return describeSyscall(r);
    case 'capability':
      return {
        kind: 'capability', syscall: 'capable',
        args: { cap: `${r.cap}(CAP_${capabilityName(r.cap)})`, capability: capabilityName(r.cap), granted: r.ret === 0 },
        ret: r.ret, ...(r.ret < 0 ? { error: errnoName(r.ret) as string } : {}),
      };
    case 'tcp':
      return {
        kind: 'tcp', syscall: 'inet_sock_set_state',
        args: { oldstate: TCP_STATES[r.oldState] ?? String(r.oldState), newstate: TCP_STATES[r.newState] ?? String(r.newState), ...sockArgs('', r.sock) },
        ret: null,
      };
    case 'io_uring':
      return describeIoUring(r);
    default:
      return undefined;
  }
}
