// Byte offsets of the records in bpf/events.h. This is the one TypeScript mirror of
// that header: test/events/layout.test.ts compiles the header and checks every
// offset and size here against what the C compiler says.

export const COMM_LEN = 16;
export const FILENAME_MAX = 256;
export const ARGS_MAX = 2048;
export const KIND_MAX = 64;

export const RECORD_KIND = {
  EXEC: 1,
  FORK: 2,
  EXIT: 3,
  SYSCALL: 4,
  CAPABILITY: 5,
  TCP_STATE: 6,
  CGROUP: 7,
  IO_URING: 8,
} as const;
export type RecordKindCode = (typeof RECORD_KIND)[keyof typeof RECORD_KIND];

export const FLAG_TRUNCATED = 1;
export const FLAG_CONTAINER_SETUP = 2;
export const FLAG_EXE_CUT = 4;
/** The kernel sent SIGKILL at this event (a kill the kernel decides: bpf/allowlist.h). */
export const FLAG_KERNEL_KILLED = 8;
/** The kernel was to kill at this event and bpf_send_signal failed. */
export const FLAG_KILL_FAILED = 16;

export const CGROUP_MODE = { V2: 0, V1_MEMORY: 1 } as const;

export const HEADER_LAYOUT = {
  size: 112,
  kind: 0,
  flags: 2,
  size_field: 4,
  time_ns: 8,
  pid: 16,
  tgid: 20,
  ns_pid: 24,
  ppid: 28,
  ns_ppid: 32,
  uid: 36,
  gid: 40,
  mnt_ns: 44,
  pid_ns: 48,
  kernel_rule: 52,
  cap_effective: 56,
  cgroup_id: 64,
  container_key: 72,
  comm: 80,
  parent_comm: 96,
} as const;

export const EXEC_LAYOUT = {
  size: 5008,
  filename_len: 112,
  args_len: 116,
  args_total: 120,
  env_len: 124,
  env_total: 128,
  exe_len: 132,
  stdio: 136,
  filename: 144,
  exe: 400,
  args: 912,
  env: 2960,
} as const;

/** enum vigil_stdio_kind: what each of fds 0, 1, 2 of an exec'd program is (vigil_exec.stdio). */
export const STDIO_KIND = {
  NONE: 0,
  FILE: 1,
  DIR: 2,
  TTY: 3,
  CHR: 4,
  PIPE: 5,
  UNIX: 6,
  INET: 7,
  INET6: 8,
  SOCKET: 9,
  OTHER: 10,
} as const;

export const FORK_LAYOUT = { size: 120, child_pid: 112, child_ns_pid: 116 } as const;
export const EXIT_LAYOUT = { size: 120, exit_code: 112 } as const;
export const CONFIG_LAYOUT = {
  size: 48, host_mnt_ns: 0, cgroup_mode: 4, enabled: 8, path_filter: 12, port_filter: 16, cap_dedup: 20, count_syscalls: 24, capture_env: 28,
  started_ns: 32, allowlists: 40,
} as const;

export const STR_MAX = 256;
export const PATH_MAX = 512;
export const BLOB_MAX = 128;
export const NAME_MAX = 256;
/** Slots of the rule map vigil_syscall_rules: the x86-64 number, or I386_RULE_BASE + the i386 number. */
export const MAX_SYSCALL = 1024;
export const I386_RULE_BASE = 512;
/** The ABI in the upper half of a vigil_count_key nr (VIGIL_ABI_*); 0xffff: a number beyond any table. */
export const COUNT_ABI = { X86_64: 0, I386: 1, X32: 2 } as const;

export const SOCK_LAYOUT = {
  size: 48, family: 0, type: 2, protocol: 4, state: 6, local_port: 8, remote_port: 10, local_addr: 16, remote_addr: 32,
} as const;

export const SYSCALL_LAYOUT = {
  size: 2168, ret: 112, args: 120, duration_ns: 168, nr: 176, sflags: 180, str_len: 182, base_len: 186,
  fd_path_len: 188, blob_len: 190, kname_len: 192, base2_len: 194, sock: 200, data: 248,
} as const;

export const SYSCALL_FLAG = { RAW: 1, FD_PATH: 2, SOCK: 4, PATH_CUT: 8, NOT_ENTERED: 16, STR_CUT: 32, COMPAT: 64, ARGS_CHANGED: 128, ROOT_BASE: 256, X32: 512, KNAME_ROOTFS: 1024, PEER_PATH: 2048, READ_AT_EXIT: 4096, NOT_ALLOWED: 8192 } as const;

export const CAPABILITY_LAYOUT = { size: 120, cap: 112, ret: 116 } as const;
export const TCP_STATE_LAYOUT = { size: 168, old_state: 112, new_state: 116, sock: 120 } as const;
/** struct vigil_cgroup: a new cgroup of the reference hierarchy; sent up to path + path_len, rounded up to 8. */
export const CGROUP_LAYOUT = { size: 640, id: 112, level: 120, path_len: 124, path: 128 } as const;

/** struct vigil_io_uring: a ring made or registered, or a request submitted; sent up to data + the used bytes. */
export const IO_URING_LAYOUT = {
  size: 1320, op: 112, fd: 116, arg0: 120, arg1: 128, arg2: 136, ret: 144, name_len: 152, name2_len: 154, base_len: 156,
  addr_len: 158, uflags: 160, data: 168,
} as const;
export const URING_OP = { SETUP: 0x100, REGISTER: 0x101 } as const;
export const URING_FLAG = { NAME_CUT: 1, BASE_CUT: 2, SQPOLL: 4 } as const;

export const RULE_LAYOUT = {
  size: 16, emit: 0, flags: 1, str_arg: 2, base_str: 4, base_arg: 5, fd_arg: 6, blob_arg: 7, blob_len_arg: 8, blob_fixed_len: 9, base2_arg: 10,
} as const;
export const ARG = { NONE: 0xff, RET: 0xfe, CWD: 0xfd } as const;
export const EMIT = { NEVER: 0, ALWAYS: 1, ON_ERROR: 2 } as const;
export const RULE_FLAG = { PATH_FILTER: 1, PORT_FILTER: 2, BLOB_LEN_PTR: 4, TRACK_SOCK: 8, KERNEL_NAME: 16 } as const;

export const COUNT_KEY_LAYOUT = { size: 16, container_key: 0, nr: 8 } as const;
export const PATH_KEY_LAYOUT = { size: 260, prefixlen: 0, path: 4 } as const;

/**
 * struct vigil_allowlist (map vigil_allowlists, by container key) and vigil_allow_pending:
 * ALLOW_WORDS 64-bit words of one bit per call, the bit being the call's rule slot (the
 * x86-64 number, I386_RULE_BASE + the i386 number, ALLOW_OTHER for x32 and beyond).
 */
export const ALLOW_WORDS = 32;
export const ALLOW_OTHER = 1024;
export const ALLOWLIST_LAYOUT = { size: 520, allowed: 0, reported: 256, flags: 512 } as const;
export const ALLOW_PENDING_LAYOUT = { size: 256, seen: 0 } as const;
export const ALLOWLIST_FLAG = { KILL: 1, ALLOW_ALL: 2, REPORT_EVERY: 4 } as const;

/** Every struct this module mirrors, by C name, for the layout test. */
/** struct vigil_task_state: the value of the task storage map vigil_container_tasks. */
export const TASK_STATE_LAYOUT = { size: 32, key: 0, flags: 8, kill_rule: 12, caps_seen: 16 } as const;

/** Loss accounting and per-container budget (bpf/events.h, common.h: vigil_submit). */
export const LOSS_REASON = { RING_FULL: 0, BUDGET: 1 } as const;
export const LOST_KEY_LAYOUT = { size: 16, container_key: 0, kind: 8, reason: 12 } as const;
export const BUDGET_CONFIG_LAYOUT = { size: 32, rate: 0, burst: 8, pressure_bytes: 16, wakeup_bytes: 24 } as const;
export const BUCKET_LAYOUT = { size: 24, tokens: 0, last_ns: 8, refused_ns: 16 } as const;

export const LAYOUTS: Record<string, Record<string, number>> = {
  vigil_task_state: TASK_STATE_LAYOUT,
  vigil_allowlist: ALLOWLIST_LAYOUT,
  vigil_allow_pending: ALLOW_PENDING_LAYOUT,
  vigil_header: { ...HEADER_LAYOUT, size: HEADER_LAYOUT.size },
  vigil_exec: EXEC_LAYOUT,
  vigil_fork: FORK_LAYOUT,
  vigil_exit: EXIT_LAYOUT,
  vigil_config: CONFIG_LAYOUT,
  vigil_sock: SOCK_LAYOUT,
  vigil_syscall: SYSCALL_LAYOUT,
  vigil_capability: CAPABILITY_LAYOUT,
  vigil_tcp_state: TCP_STATE_LAYOUT,
  vigil_cgroup: CGROUP_LAYOUT,
  vigil_io_uring: IO_URING_LAYOUT,
  vigil_syscall_rule: RULE_LAYOUT,
  vigil_count_key: COUNT_KEY_LAYOUT,
  vigil_path_key: PATH_KEY_LAYOUT,
  vigil_lost_key: LOST_KEY_LAYOUT,
  vigil_budget_config: BUDGET_CONFIG_LAYOUT,
  vigil_bucket: BUCKET_LAYOUT,
};
