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
} as const;
export type RecordKindCode = (typeof RECORD_KIND)[keyof typeof RECORD_KIND];

export const FLAG_TRUNCATED = 1;

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
  cap_effective: 56,
  cgroup_id: 64,
  container_key: 72,
  comm: 80,
  parent_comm: 96,
} as const;

export const EXEC_LAYOUT = {
  size: 2432,
  filename_len: 112,
  args_len: 116,
  args_total: 120,
  filename: 128,
  args: 384,
} as const;

export const FORK_LAYOUT = { size: 120, child_pid: 112, child_ns_pid: 116 } as const;
export const EXIT_LAYOUT = { size: 120, exit_code: 112 } as const;
export const CONFIG_LAYOUT = { size: 16, host_mnt_ns: 0, cgroup_mode: 4, enabled: 8 } as const;

/** Every struct this module mirrors, by C name, for the layout test. */
export const LAYOUTS: Record<string, Record<string, number>> = {
  vigil_header: { ...HEADER_LAYOUT, size: HEADER_LAYOUT.size },
  vigil_exec: EXEC_LAYOUT,
  vigil_fork: FORK_LAYOUT,
  vigil_exit: EXIT_LAYOUT,
  vigil_config: CONFIG_LAYOUT,
};
