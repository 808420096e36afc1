// What vigil captures of each system call it understands: the category, the names
// and types of the arguments, and the capture rule pushed into the kernel map
// vigil_syscall_rules (which arguments are strings, which fd to describe, which
// bytes to copy). One table serves the kernel side, the decoder and the renderers.
import { ARG, COUNT_ABI, EMIT, I386_RULE_BASE, RULE_FLAG, RULE_LAYOUT } from './layout.js';
import { SYSCALL_NAMES_I386, SYSCALL_NAMES_X86_64 } from './syscall-table.js';

export type SyscallCategory = 'file' | 'process' | 'network';

/** How an argument is shown. `str0`/`str1` are the strings the kernel copied. */
export type ArgType =
  | 'int' | 'uint' | 'hex' | 'fd' | 'dirfd' | 'str0' | 'str1' | 'oflags' | 'mode' | 'atflags' | 'renameflags'
  | 'cloneflags' | 'ptrace' | 'prctl' | 'bpfcmd' | 'memfdflags' | 'mountflags' | 'umountflags' | 'sockaddr' | 'skip'
  | 'family' | 'socktype';

export interface SyscallSpec {
  category: SyscallCategory;
  args: Array<[name: string, type: ArgType]>;
  /** Captured strings: argument index of str0 and str1. */
  strings?: [number] | [number, number];
  /** The string (0 or 1) a relative path is resolved against base (a dirfd argument or the cwd). */
  base?: { str: 0 | 1; dirfdArg: number | 'cwd' };
  /**
   * A second path (rename's and link's new name) and its own directory. The kernel side
   * reads that directory too (base2) when the name is relative and the first name's
   * directory was not read (the first name is absolute) or is another one (renameat with
   * two directory fds); the second name is made absolute against it.
   */
  secondPath?: { str: 0 | 1; dirfdArg: number | 'cwd' };
  /** The fd whose kernel path or socket is described: an argument index or the return value. */
  fd?: number | 'ret';
  /** Raw bytes: argument index, and a length argument or a fixed length. */
  blob?: { arg: number; lenArg?: number; lenIsPointer?: boolean; fixedLen?: number; as: 'sockaddr' | 'open_how' | 'capdata' | 'cstring' };
  emit?: 'always' | 'on-error';
  pathFilter?: boolean;
  portFilter?: boolean;
  trackSocket?: boolean;
  /** Report the name of the inode whose change time the call changed (the kernel's object of a
   * chmod, chown or truncate), so a name swapped in user memory while the call ran is found out.
   * Only for calls whose last change-time update is the named file's own inode: unlink, rename,
   * link, mkdir and mount update their directory's last, or no inode at all (docs/coverage.md). */
  kernelName?: boolean;
  /** Only in the i386 table (a compat call): socketcall, the 32-bit multiplexer. */
  i386Only?: boolean;
  /** Sent by the default configuration. */
  defaultOn: boolean;
}

const cwd = { str: 0, dirfdArg: 'cwd' } as const;
const at0 = { str: 0, dirfdArg: 0 } as const;

export const SYSCALL_SPECS: Readonly<Record<string, SyscallSpec>> = {
  // --- file ---------------------------------------------------------------
  open: { category: 'file', args: [['name', 'str0'], ['flags', 'oflags'], ['mode', 'mode']], strings: [0], base: cwd, fd: 'ret', pathFilter: true, defaultOn: true },
  openat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'oflags'], ['mode', 'mode']], strings: [1], base: at0, fd: 'ret', pathFilter: true, defaultOn: true },
  openat2: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['how', 'skip'], ['size', 'skip']], strings: [1], base: at0, fd: 'ret', blob: { arg: 2, lenArg: 3, as: 'open_how' }, pathFilter: true, defaultOn: true },
  creat: { category: 'file', args: [['name', 'str0'], ['mode', 'mode']], strings: [0], base: cwd, fd: 'ret', pathFilter: true, defaultOn: true },
  truncate: { category: 'file', args: [['name', 'str0'], ['length', 'int']], strings: [0], base: cwd, kernelName: true, defaultOn: true },
  ftruncate: { category: 'file', args: [['fd', 'fd'], ['length', 'int']], fd: 0, pathFilter: true, defaultOn: true },
  unlink: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  unlinkat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'atflags']], strings: [1], base: at0, defaultOn: true },
  rename: { category: 'file', args: [['oldname', 'str0'], ['newname', 'str1']], strings: [0, 1], base: cwd, secondPath: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  renameat: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  renameat2: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1'], ['flags', 'renameflags']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  chmod: { category: 'file', args: [['name', 'str0'], ['mode', 'mode']], strings: [0], base: cwd, kernelName: true, defaultOn: true },
  fchmod: { category: 'file', args: [['fd', 'fd'], ['mode', 'mode']], fd: 0, defaultOn: true },
  fchmodat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode']], strings: [1], base: at0, kernelName: true, defaultOn: true },
  fchmodat2: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode'], ['flags', 'atflags']], strings: [1], base: at0, kernelName: true, defaultOn: true },
  chown: { category: 'file', args: [['name', 'str0'], ['uid', 'int'], ['gid', 'int']], strings: [0], base: cwd, kernelName: true, defaultOn: true },
  lchown: { category: 'file', args: [['name', 'str0'], ['uid', 'int'], ['gid', 'int']], strings: [0], base: cwd, kernelName: true, defaultOn: true },
  fchown: { category: 'file', args: [['fd', 'fd'], ['uid', 'int'], ['gid', 'int']], fd: 0, defaultOn: true },
  fchownat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['uid', 'int'], ['gid', 'int'], ['flags', 'atflags']], strings: [1], base: at0, kernelName: true, defaultOn: true },
  link: { category: 'file', args: [['oldname', 'str0'], ['newname', 'str1']], strings: [0, 1], base: cwd, secondPath: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  linkat: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1'], ['flags', 'atflags']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  symlink: { category: 'file', args: [['target', 'str0'], ['linkpath', 'str1']], strings: [0, 1], base: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  symlinkat: { category: 'file', args: [['target', 'str0'], ['newdirfd', 'dirfd'], ['linkpath', 'str1']], strings: [0, 2], base: { str: 1, dirfdArg: 1 }, defaultOn: true },
  mount: { category: 'file', args: [['source', 'str0'], ['target', 'str1'], ['fstype', 'skip'], ['flags', 'mountflags'], ['data', 'hex']], strings: [0, 1], base: { str: 1, dirfdArg: 'cwd' }, blob: { arg: 2, fixedLen: 32, as: 'cstring' }, defaultOn: true },
  umount2: { category: 'file', args: [['target', 'str0'], ['flags', 'umountflags']], strings: [0], base: cwd, defaultOn: true },
  // New directories (hidden ones, ones below /bin) and device nodes; the root moved.
  mkdir: { category: 'file', args: [['name', 'str0'], ['mode', 'mode']], strings: [0], base: cwd, defaultOn: true },
  mkdirat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode']], strings: [1], base: at0, defaultOn: true },
  rmdir: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  mknod: { category: 'file', args: [['name', 'str0'], ['mode', 'mode'], ['dev', 'hex']], strings: [0], base: cwd, defaultOn: true },
  mknodat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode'], ['dev', 'hex']], strings: [1], base: at0, defaultOn: true },
  chroot: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  pivot_root: { category: 'file', args: [['new_root', 'str0'], ['put_old', 'str1']], strings: [0, 1], base: cwd, secondPath: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  // Extended attributes: security.capability gives a file capabilities, security.* labels.
  setxattr: { category: 'file', args: [['name', 'str0'], ['attr', 'str1'], ['value', 'hex'], ['size', 'uint'], ['flags', 'int']], strings: [0, 1], base: cwd, defaultOn: true },
  lsetxattr: { category: 'file', args: [['name', 'str0'], ['attr', 'str1'], ['value', 'hex'], ['size', 'uint'], ['flags', 'int']], strings: [0, 1], base: cwd, defaultOn: true },
  fsetxattr: { category: 'file', args: [['fd', 'fd'], ['attr', 'str0'], ['value', 'hex'], ['size', 'uint'], ['flags', 'int']], strings: [1], fd: 0, defaultOn: true },
  removexattr: { category: 'file', args: [['name', 'str0'], ['attr', 'str1']], strings: [0, 1], base: cwd, defaultOn: true },
  lremovexattr: { category: 'file', args: [['name', 'str0'], ['attr', 'str1']], strings: [0, 1], base: cwd, defaultOn: true },
  fremovexattr: { category: 'file', args: [['fd', 'fd'], ['attr', 'str0']], strings: [1], fd: 0, defaultOn: true },
  setxattrat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'atflags'], ['attr', 'str1']], strings: [1, 3], base: at0, defaultOn: true },
  removexattrat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'atflags'], ['attr', 'str1']], strings: [1, 3], base: at0, defaultOn: true },
  // File handles: the "shocker" escape finds and opens host files by handle.
  name_to_handle_at: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['handle', 'skip'], ['mount_id', 'skip'], ['flags', 'atflags']], strings: [1], base: at0, defaultOn: true },
  open_by_handle_at: { category: 'file', args: [['mount_fd', 'fd'], ['handle', 'skip'], ['flags', 'oflags']], fd: 'ret', defaultOn: true },
  // The new mount API: what mount(2) does, in steps.
  fsopen: { category: 'file', args: [['fstype', 'str0'], ['flags', 'hex']], strings: [0], defaultOn: true },
  fspick: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'hex']], strings: [1], base: at0, defaultOn: true },
  fsmount: { category: 'file', args: [['fsfd', 'fd'], ['flags', 'hex'], ['attr_flags', 'hex']], defaultOn: true },
  move_mount: { category: 'file', args: [['from_dirfd', 'dirfd'], ['from', 'str0'], ['to_dirfd', 'dirfd'], ['to', 'str1'], ['flags', 'hex']], strings: [1, 3], base: { str: 1, dirfdArg: 2 }, defaultOn: true },
  open_tree: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'hex']], strings: [1], base: at0, fd: 'ret', defaultOn: true },
  open_tree_attr: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'hex'], ['attr', 'hex'], ['size', 'uint']], strings: [1], base: at0, fd: 'ret', defaultOn: true },
  quotactl_fd: { category: 'file', args: [['fd', 'fd'], ['cmd', 'hex'], ['id', 'int'], ['addr', 'hex']], fd: 0, defaultOn: true },
  uselib: { category: 'file', args: [['library', 'str0']], strings: [0], base: cwd, defaultOn: true },
  mount_setattr: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'hex'], ['attr', 'hex'], ['size', 'uint']], strings: [1], base: at0, defaultOn: true },
  swapon: { category: 'file', args: [['name', 'str0'], ['flags', 'hex']], strings: [0], base: cwd, defaultOn: true },
  swapoff: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  acct: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  quotactl: { category: 'file', args: [['cmd', 'hex'], ['special', 'str0'], ['id', 'int'], ['addr', 'hex']], strings: [1], defaultOn: true },
  fanotify_init: { category: 'file', args: [['flags', 'hex'], ['event_flags', 'hex']], defaultOn: true },
  fanotify_mark: { category: 'file', args: [['fd', 'fd'], ['flags', 'hex'], ['mask', 'hex'], ['dirfd', 'dirfd'], ['name', 'str0']], strings: [4], base: { str: 0, dirfdArg: 3 }, defaultOn: true },
  // --- process ------------------------------------------------------------
  execve: { category: 'process', args: [['filename', 'str0'], ['argv', 'skip'], ['envp', 'skip']], strings: [0], base: cwd, emit: 'on-error', defaultOn: true },
  execveat: { category: 'process', args: [['dirfd', 'dirfd'], ['filename', 'str0'], ['argv', 'skip'], ['envp', 'skip'], ['flags', 'atflags']], strings: [1], base: at0, emit: 'on-error', defaultOn: true },
  ptrace: { category: 'process', args: [['request', 'ptrace'], ['pid', 'int'], ['addr', 'hex'], ['data', 'hex']], defaultOn: true },
  setuid: { category: 'process', args: [['uid', 'int']], defaultOn: true },
  setgid: { category: 'process', args: [['gid', 'int']], defaultOn: true },
  setreuid: { category: 'process', args: [['ruid', 'int'], ['euid', 'int']], defaultOn: true },
  setregid: { category: 'process', args: [['rgid', 'int'], ['egid', 'int']], defaultOn: true },
  setresuid: { category: 'process', args: [['ruid', 'int'], ['euid', 'int'], ['suid', 'int']], defaultOn: true },
  setresgid: { category: 'process', args: [['rgid', 'int'], ['egid', 'int'], ['sgid', 'int']], defaultOn: true },
  setfsuid: { category: 'process', args: [['uid', 'int']], defaultOn: true },
  setfsgid: { category: 'process', args: [['gid', 'int']], defaultOn: true },
  capset: { category: 'process', args: [['header', 'skip'], ['data', 'skip']], blob: { arg: 1, fixedLen: 24, as: 'capdata' }, defaultOn: true },
  unshare: { category: 'process', args: [['flags', 'cloneflags']], defaultOn: true },
  setns: { category: 'process', args: [['fd', 'fd'], ['nstype', 'cloneflags']], fd: 0, defaultOn: true },
  init_module: { category: 'process', args: [['image', 'hex'], ['len', 'uint'], ['params', 'str0']], strings: [2], defaultOn: true },
  finit_module: { category: 'process', args: [['fd', 'fd'], ['params', 'str0'], ['flags', 'int']], strings: [1], fd: 0, defaultOn: true },
  delete_module: { category: 'process', args: [['name', 'str0'], ['flags', 'int']], strings: [0], defaultOn: true },
  bpf: { category: 'process', args: [['cmd', 'bpfcmd'], ['attr', 'hex'], ['size', 'uint']], defaultOn: true },
  memfd_create: { category: 'process', args: [['name', 'str0'], ['flags', 'memfdflags']], strings: [0], defaultOn: true },
  // Privilege and the machine itself: each needs a capability a container should not have.
  setgroups: { category: 'process', args: [['size', 'int'], ['list', 'hex']], defaultOn: true },
  personality: { category: 'process', args: [['persona', 'hex']], defaultOn: true },
  userfaultfd: { category: 'process', args: [['flags', 'hex']], fd: 'ret', defaultOn: true },
  process_vm_readv: { category: 'process', args: [['pid', 'int'], ['local_iov', 'hex'], ['liovcnt', 'uint'], ['remote_iov', 'hex'], ['riovcnt', 'uint'], ['flags', 'hex']], defaultOn: true },
  process_vm_writev: { category: 'process', args: [['pid', 'int'], ['local_iov', 'hex'], ['liovcnt', 'uint'], ['remote_iov', 'hex'], ['riovcnt', 'uint'], ['flags', 'hex']], defaultOn: true },
  pidfd_getfd: { category: 'process', args: [['pidfd', 'fd'], ['targetfd', 'int'], ['flags', 'hex']], fd: 'ret', defaultOn: true },
  kcmp: { category: 'process', args: [['pid1', 'int'], ['pid2', 'int'], ['type', 'int'], ['idx1', 'hex'], ['idx2', 'hex']], defaultOn: true },
  perf_event_open: { category: 'process', args: [['attr', 'hex'], ['pid', 'int'], ['cpu', 'int'], ['group_fd', 'fd'], ['flags', 'hex']], defaultOn: true },
  keyctl: { category: 'process', args: [['cmd', 'int'], ['arg2', 'hex'], ['arg3', 'hex'], ['arg4', 'hex'], ['arg5', 'hex']], defaultOn: true },
  add_key: { category: 'process', args: [['type', 'str0'], ['description', 'str1'], ['payload', 'hex'], ['plen', 'uint'], ['keyring', 'int']], strings: [0, 1], defaultOn: true },
  request_key: { category: 'process', args: [['type', 'str0'], ['description', 'str1'], ['callout', 'hex'], ['keyring', 'int']], strings: [0, 1], defaultOn: true },
  kexec_load: { category: 'process', args: [['entry', 'hex'], ['nr_segments', 'uint'], ['segments', 'hex'], ['flags', 'hex']], defaultOn: true },
  kexec_file_load: { category: 'process', args: [['kernel_fd', 'fd'], ['initrd_fd', 'fd'], ['cmdline_len', 'uint'], ['cmdline', 'str0'], ['flags', 'hex']], strings: [3], fd: 0, defaultOn: true },
  reboot: { category: 'process', args: [['magic', 'hex'], ['magic2', 'hex'], ['cmd', 'hex'], ['arg', 'hex']], defaultOn: true },
  sethostname: { category: 'process', args: [['name', 'str0'], ['len', 'uint']], strings: [0], defaultOn: true },
  setdomainname: { category: 'process', args: [['name', 'str0'], ['len', 'uint']], strings: [0], defaultOn: true },
  settimeofday: { category: 'process', args: [['tv', 'hex'], ['tz', 'hex']], defaultOn: true },
  clock_settime: { category: 'process', args: [['clock', 'int'], ['tp', 'hex']], defaultOn: true },
  adjtimex: { category: 'process', args: [['buf', 'hex']], defaultOn: true },
  clock_adjtime: { category: 'process', args: [['clock', 'int'], ['buf', 'hex']], defaultOn: true },
  iopl: { category: 'process', args: [['level', 'int']], defaultOn: true },
  ioperm: { category: 'process', args: [['from', 'hex'], ['num', 'uint'], ['on', 'int']], defaultOn: true },
  modify_ldt: { category: 'process', args: [['func', 'int'], ['ptr', 'hex'], ['bytecount', 'uint']], defaultOn: true },
  memfd_secret: { category: 'process', args: [['flags', 'hex']], fd: 'ret', defaultOn: true },
  lsm_set_self_attr: { category: 'process', args: [['attr', 'int'], ['ctx', 'hex'], ['size', 'uint'], ['flags', 'hex']], defaultOn: true },
  syslog: { category: 'process', args: [['type', 'int'], ['buf', 'hex'], ['len', 'int']], defaultOn: true },
  prctl: { category: 'process', args: [['option', 'prctl'], ['arg2', 'hex'], ['arg3', 'hex'], ['arg4', 'hex'], ['arg5', 'hex']], defaultOn: true },
  // --- network ------------------------------------------------------------
  connect: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 1, lenArg: 2, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  accept: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'skip']], fd: 'ret', blob: { arg: 1, lenArg: 2, lenIsPointer: true, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  accept4: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'skip'], ['flags', 'hex']], fd: 'ret', blob: { arg: 1, lenArg: 2, lenIsPointer: true, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  bind: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 1, lenArg: 2, as: 'sockaddr' }, portFilter: true, defaultOn: true },
  listen: { category: 'network', args: [['fd', 'fd'], ['backlog', 'int']], fd: 0, portFilter: true, trackSocket: true, defaultOn: true },
  socket: { category: 'network', args: [['family', 'family'], ['type', 'socktype'], ['protocol', 'int']], fd: 'ret', defaultOn: true },
  // The i386 socket multiplexer (older 32-bit C libraries): call number and its argument block.
  socketcall: { category: 'network', args: [['call', 'int'], ['args', 'hex']], i386Only: true, defaultOn: true },
  sendto: { category: 'network', args: [['fd', 'fd'], ['buf', 'skip'], ['len', 'uint'], ['flags', 'hex'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 4, lenArg: 5, as: 'sockaddr' }, portFilter: true, defaultOn: false },
};

const NUMBER_BY_NAME: ReadonlyMap<string, number> = new Map(Object.entries(SYSCALL_NAMES_X86_64).map(([n, name]) => [name, Number(n)]));

/**
 * i386 calls that are an x86-64 call under another name (32-bit ids, 64-bit offsets split
 * across two registers): reported, judged and captured under the x86-64 name.
 */
const I386_ALIASES: Readonly<Record<string, string>> = {
  chown32: 'chown', lchown32: 'lchown', fchown32: 'fchown', setuid32: 'setuid', setgid32: 'setgid', setreuid32: 'setreuid',
  setregid32: 'setregid', setresuid32: 'setresuid', setresgid32: 'setresgid', setfsuid32: 'setfsuid', setfsgid32: 'setfsgid',
  setgroups32: 'setgroups', truncate64: 'truncate', ftruncate64: 'ftruncate', umount: 'umount2',
  clock_settime64: 'clock_settime', clock_adjtime64: 'clock_adjtime',
};

/** The name of an i386 call as vigil reports it (the x86-64 name where the call is the same). */
export function i386SyscallName(nr: number): string {
  const name = SYSCALL_NAMES_I386[nr];
  if (name === undefined) return `syscall_${nr}`;
  return I386_ALIASES[name] ?? name;
}

/** i386 numbers by reported name (several numbers for chown: the 16- and 32-bit-id calls). */
const I386_NUMBERS_BY_NAME: ReadonlyMap<string, number[]> = (() => {
  const m = new Map<string, number[]>();
  for (const n of Object.keys(SYSCALL_NAMES_I386)) {
    const name = i386SyscallName(Number(n));
    m.set(name, [...(m.get(name) ?? []), Number(n)]);
  }
  return m;
})();

/**
 * The name of a system call number. Numbers from the syscall counts carry their ABI
 * above bit 16 (vigil_count_key): an i386 call is named `i386:NAME`, an x32 one
 * `x32:NAME`, a number beyond every table `invalid`, so the ABIs are counted apart.
 */
export function syscallName(nr: number): string {
  const abi = nr >>> 16;
  const n = nr & 0xffff;
  if (abi === 0 && nr < 0xffff) return SYSCALL_NAMES_X86_64[nr] ?? `syscall_${nr}`;
  const prefix = abi === COUNT_ABI.I386 ? 'i386' : abi === COUNT_ABI.X32 ? 'x32' : abi === 0 ? 'x86_64' : `abi${abi}`;
  if (n === 0xffff) return `${prefix}:invalid`;
  if (abi === COUNT_ABI.I386) return `i386:${i386SyscallName(n)}`;
  return `${prefix}:${SYSCALL_NAMES_X86_64[n] ?? `syscall_${n}`}`;
}

/** Slots of vigil_syscall_rules the capture rule of `name` goes in: its x86-64 number and every i386 one. */
export function ruleSlots(name: string): number[] {
  const spec = specOf(name);
  const slots: number[] = [];
  const nr = NUMBER_BY_NAME.get(name);
  if (nr !== undefined && !spec?.i386Only) slots.push(nr);
  for (const n of I386_NUMBERS_BY_NAME.get(name) ?? []) if (n < I386_RULE_BASE) slots.push(I386_RULE_BASE + n);
  return slots;
}

/**
 * The allow-list bits (rule slots) of a name as policies and the analyzer write it: NAME the
 * x86-64 call, `i386:NAME` the 32-bit one (a compat call from a 64-bit program). Undefined
 * when no table has it.
 */
export function allowlistBits(name: string): number[] | undefined {
  if (name.startsWith('i386:')) {
    const ns = (I386_NUMBERS_BY_NAME.get(name.slice(5)) ?? []).filter((n) => n < I386_RULE_BASE);
    return ns.length > 0 ? ns.map((n) => I386_RULE_BASE + n) : undefined;
  }
  const nr = NUMBER_BY_NAME.get(name);
  return nr !== undefined ? [nr] : undefined;
}

export function syscallNumber(name: string): number | undefined {
  return NUMBER_BY_NAME.get(name);
}

export function specOf(name: string): SyscallSpec | undefined {
  return Object.prototype.hasOwnProperty.call(SYSCALL_SPECS, name) ? SYSCALL_SPECS[name] : undefined;
}

/** The bytes of struct vigil_syscall_rule for one syscall. */
export function encodeRule(spec: SyscallSpec): Buffer {
  const R = RULE_LAYOUT;
  const b = Buffer.alloc(R.size);
  b[R.emit] = spec.emit === 'on-error' ? EMIT.ON_ERROR : EMIT.ALWAYS;
  b[R.flags] = (spec.pathFilter ? RULE_FLAG.PATH_FILTER : 0) | (spec.portFilter ? RULE_FLAG.PORT_FILTER : 0)
    | (spec.blob?.lenIsPointer ? RULE_FLAG.BLOB_LEN_PTR : 0) | (spec.trackSocket ? RULE_FLAG.TRACK_SOCK : 0)
    | (spec.kernelName ? RULE_FLAG.KERNEL_NAME : 0);
  b[R.str_arg] = spec.strings?.[0] ?? ARG.NONE;
  b[R.str_arg + 1] = spec.strings?.[1] ?? ARG.NONE;
  b[R.base_str] = spec.base?.str ?? 0;
  b[R.base_arg] = spec.base === undefined ? ARG.NONE : spec.base.dirfdArg === 'cwd' ? ARG.CWD : spec.base.dirfdArg;
  b[R.fd_arg] = spec.fd === undefined ? ARG.NONE : spec.fd === 'ret' ? ARG.RET : spec.fd;
  b[R.blob_arg] = spec.blob?.arg ?? ARG.NONE;
  b[R.blob_len_arg] = spec.blob?.lenArg ?? ARG.NONE;
  b[R.blob_fixed_len] = spec.blob?.fixedLen ?? 0;
  // The second name's own directory: the kernel reads it when that name is relative and
  // the first name's directory (if one was read) is not the same one.
  b[R.base2_arg] = spec.secondPath === undefined ? ARG.NONE : spec.secondPath.dirfdArg === 'cwd' ? ARG.CWD : spec.secondPath.dirfdArg;
  return b;
}
