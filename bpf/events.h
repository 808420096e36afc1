/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Record layouts shared by the BPF programs and the TypeScript decoder
 * (src/events/layout.ts mirrors this file; test/events/layout.test.ts compiles a
 * probe against this header and fails when the two disagree).
 *
 * Every record starts with struct vigil_header; header.size is the whole record's
 * length in bytes, so a reader can skip kinds it does not know.
 */
#ifndef VIGIL_EVENTS_H
#define VIGIL_EVENTS_H

#define VIGIL_COMM_LEN 16
#define VIGIL_FILENAME_MAX 256
#define VIGIL_ARGS_MAX 2048

/* Record kinds. Values are part of the record format: append, never renumber. */
enum vigil_kind {
	VIGIL_KIND_EXEC = 1,
	VIGIL_KIND_FORK = 2,
	VIGIL_KIND_EXIT = 3,
	VIGIL_KIND_MAX = 64, /* size of the per-kind lost counter array */
};

/* header.flags */
#define VIGIL_FLAG_TRUNCATED (1u << 0) /* a string or argv in the payload was cut */

struct vigil_header {
	__u16 kind;
	__u16 flags;
	__u32 size;          /* bytes of the whole record, header included */
	__u64 time_ns;       /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u32 pid;           /* host thread id */
	__u32 tgid;          /* host process id */
	__u32 ns_pid;        /* process id inside the task's pid namespace */
	__u32 ppid;          /* host process id of the real parent */
	__u32 ns_ppid;       /* parent's pid in the same pid namespace, 0 when outside */
	__u32 uid;
	__u32 gid;
	__u32 mnt_ns;        /* mount namespace inode */
	__u32 pid_ns;        /* pid namespace inode */
	__u32 _pad0;
	__u64 cap_effective;
	__u64 cgroup_id;     /* cgroup v2 id of the task */
	__u64 container_key; /* kernfs id of the task's cgroup in the reference hierarchy */
	char comm[VIGIL_COMM_LEN];
	char parent_comm[VIGIL_COMM_LEN];
};

struct vigil_exec {
	struct vigil_header hdr;
	__u32 filename_len;  /* bytes of filename, without the NUL */
	__u32 args_len;      /* bytes of args carried (NUL-separated argv) */
	__u32 args_total;    /* bytes of the full argv in the process; > args_len when cut */
	__u32 _pad0;
	char filename[VIGIL_FILENAME_MAX];
	char args[VIGIL_ARGS_MAX]; /* only args_len bytes are in the record */
};

struct vigil_fork {
	struct vigil_header hdr; /* the parent */
	__u32 child_pid;
	__u32 child_ns_pid;
};

struct vigil_exit {
	struct vigil_header hdr;
	__s32 exit_code;     /* wait(2) status: code << 8 | signal */
	__u32 _pad0;
};

/* Set by user space after load (map "vigil_config", one entry). */
struct vigil_config {
	__u32 host_mnt_ns;   /* mount namespace of the host: its tasks are skipped */
	__u32 cgroup_mode;   /* VIGIL_CGROUP_V2 or VIGIL_CGROUP_V1_MEMORY */
	__u32 enabled;       /* 0 until user space has filled the maps */
	__u32 _pad0;
};

#define VIGIL_CGROUP_V2 0
#define VIGIL_CGROUP_V1_MEMORY 1

#endif
