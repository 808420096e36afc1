// What vigil captures of each system call it understands: the category, the names
// and types of the arguments, and the capture rule pushed into the kernel map
// vigil_syscall_rules (which arguments are strings, which fd to describe, which
// bytes to copy). One table serves the kernel side, the decoder and the renderers.
import { ARG, EMIT, RULE_FLAG, RULE_LAYOUT } from './layout.js';
import { SYSCALL_NAMES_X86_64 } from './syscall-table.js';

export type SyscallCategory = 'file' | 'process' | 'network';

/** How an argument is shown. `str0`/`str1` are the strings the kernel copied. */
export type ArgType =
  | 'int' | 'uint' | 'hex' | 'fd' | 'dirfd' | 'str0' | 'str1' | 'oflags' | 'mode' | 'atflags' | 'renameflags'
  | 'cloneflags' | 'ptrace' | 'prctl' | 'bpfcmd' | 'memfdflags' | 'mountflags' | 'umountflags' | 'sockaddr' | 'skip';

export interface SyscallSpec {
  category: SyscallCategory;
  args: Array<[name: string, type: ArgType]>;
  /** Captured strings: argument index of str0 and str1. */
  strings?: [number] | [number, number];
  /** The string (0 or 1) a relative path is resolved against base (a dirfd argument or the cwd). */
  base?: { str: 0 | 1; dirfdArg: number | 'cwd' };
  /**
   * A second path (rename's and link's new name) and its own directory. The kernel side
   * resolves one directory only: the second name is made absolute when it is absolute
   * already or relative to that same directory, and left out (not guessed) otherwise.
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
  truncate: { category: 'file', args: [['name', 'str0'], ['length', 'int']], strings: [0], base: cwd, defaultOn: true },
  ftruncate: { category: 'file', args: [['fd', 'fd'], ['length', 'int']], fd: 0, pathFilter: true, defaultOn: true },
  unlink: { category: 'file', args: [['name', 'str0']], strings: [0], base: cwd, defaultOn: true },
  unlinkat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['flags', 'atflags']], strings: [1], base: at0, defaultOn: true },
  rename: { category: 'file', args: [['oldname', 'str0'], ['newname', 'str1']], strings: [0, 1], base: cwd, secondPath: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  renameat: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  renameat2: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1'], ['flags', 'renameflags']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  chmod: { category: 'file', args: [['name', 'str0'], ['mode', 'mode']], strings: [0], base: cwd, defaultOn: true },
  fchmod: { category: 'file', args: [['fd', 'fd'], ['mode', 'mode']], fd: 0, defaultOn: true },
  fchmodat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode']], strings: [1], base: at0, defaultOn: true },
  fchmodat2: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['mode', 'mode'], ['flags', 'atflags']], strings: [1], base: at0, defaultOn: true },
  chown: { category: 'file', args: [['name', 'str0'], ['uid', 'int'], ['gid', 'int']], strings: [0], base: cwd, defaultOn: true },
  lchown: { category: 'file', args: [['name', 'str0'], ['uid', 'int'], ['gid', 'int']], strings: [0], base: cwd, defaultOn: true },
  fchown: { category: 'file', args: [['fd', 'fd'], ['uid', 'int'], ['gid', 'int']], fd: 0, defaultOn: true },
  fchownat: { category: 'file', args: [['dirfd', 'dirfd'], ['name', 'str0'], ['uid', 'int'], ['gid', 'int'], ['flags', 'atflags']], strings: [1], base: at0, defaultOn: true },
  link: { category: 'file', args: [['oldname', 'str0'], ['newname', 'str1']], strings: [0, 1], base: cwd, secondPath: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  linkat: { category: 'file', args: [['olddirfd', 'dirfd'], ['oldname', 'str0'], ['newdirfd', 'dirfd'], ['newname', 'str1'], ['flags', 'atflags']], strings: [1, 3], base: at0, secondPath: { str: 1, dirfdArg: 2 }, defaultOn: true },
  symlink: { category: 'file', args: [['target', 'str0'], ['linkpath', 'str1']], strings: [0, 1], base: { str: 1, dirfdArg: 'cwd' }, defaultOn: true },
  symlinkat: { category: 'file', args: [['target', 'str0'], ['newdirfd', 'dirfd'], ['linkpath', 'str1']], strings: [0, 2], base: { str: 1, dirfdArg: 1 }, defaultOn: true },
  mount: { category: 'file', args: [['source', 'str0'], ['target', 'str1'], ['fstype', 'skip'], ['flags', 'mountflags'], ['data', 'hex']], strings: [0, 1], base: { str: 1, dirfdArg: 'cwd' }, blob: { arg: 2, fixedLen: 32, as: 'cstring' }, defaultOn: true },
  umount2: { category: 'file', args: [['target', 'str0'], ['flags', 'umountflags']], strings: [0], base: cwd, defaultOn: true },
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
  prctl: { category: 'process', args: [['option', 'prctl'], ['arg2', 'hex'], ['arg3', 'hex'], ['arg4', 'hex'], ['arg5', 'hex']], defaultOn: true },
  // --- network ------------------------------------------------------------
  connect: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 1, lenArg: 2, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  accept: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'skip']], fd: 'ret', blob: { arg: 1, lenArg: 2, lenIsPointer: true, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  accept4: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'skip'], ['flags', 'hex']], fd: 'ret', blob: { arg: 1, lenArg: 2, lenIsPointer: true, as: 'sockaddr' }, portFilter: true, trackSocket: true, defaultOn: true },
  bind: { category: 'network', args: [['fd', 'fd'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 1, lenArg: 2, as: 'sockaddr' }, portFilter: true, defaultOn: true },
  listen: { category: 'network', args: [['fd', 'fd'], ['backlog', 'int']], fd: 0, portFilter: true, trackSocket: true, defaultOn: true },
  sendto: { category: 'network', args: [['fd', 'fd'], ['buf', 'skip'], ['len', 'uint'], ['flags', 'hex'], ['addr', 'sockaddr'], ['addrlen', 'uint']], fd: 0, blob: { arg: 4, lenArg: 5, as: 'sockaddr' }, portFilter: true, defaultOn: false },
};

const NUMBER_BY_NAME: ReadonlyMap<string, number> = new Map(Object.entries(SYSCALL_NAMES_X86_64).map(([n, name]) => [name, Number(n)]));

export function syscallName(nr: number): string {
  return SYSCALL_NAMES_X86_64[nr] ?? `syscall_${nr}`;
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
    | (spec.blob?.lenIsPointer ? RULE_FLAG.BLOB_LEN_PTR : 0) | (spec.trackSocket ? RULE_FLAG.TRACK_SOCK : 0);
  b[R.str_arg] = spec.strings?.[0] ?? ARG.NONE;
  b[R.str_arg + 1] = spec.strings?.[1] ?? ARG.NONE;
  b[R.base_str] = spec.base?.str ?? 0;
  b[R.base_arg] = spec.base === undefined ? ARG.NONE : spec.base.dirfdArg === 'cwd' ? ARG.CWD : spec.base.dirfdArg;
  b[R.fd_arg] = spec.fd === undefined ? ARG.NONE : spec.fd === 'ret' ? ARG.RET : spec.fd;
  b[R.blob_arg] = spec.blob?.arg ?? ARG.NONE;
  b[R.blob_len_arg] = spec.blob?.lenArg ?? ARG.NONE;
  b[R.blob_fixed_len] = spec.blob?.fixedLen ?? 0;
  return b;
}
