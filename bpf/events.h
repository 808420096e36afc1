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
#define VIGIL_PATH_MAX 512      /* a path the kernel resolved */

/* Record kinds. Values are part of the record format: append, never renumber. */
enum vigil_kind {
	VIGIL_KIND_EXEC = 1,
	VIGIL_KIND_FORK = 2,
	VIGIL_KIND_EXIT = 3,
	VIGIL_KIND_SYSCALL = 4,    /* a system call a rule asked for, or a streamed one */
	VIGIL_KIND_CAPABILITY = 5, /* a cap_capable check */
	VIGIL_KIND_TCP_STATE = 6,  /* a TCP state change of a socket a container used */
	VIGIL_KIND_CGROUP = 7,     /* a new cgroup of the reference hierarchy (not an event: identity) */
	VIGIL_KIND_IO_URING = 8,   /* a ring set up or registered, or a request submitted through one */
	VIGIL_KIND_MAX = 64, /* size of the per-kind lost counter array */
};

/* header.flags */
#define VIGIL_FLAG_TRUNCATED (1u << 0) /* a string or argv in the payload was cut */
/* The task is the runtime preparing the container (runc's init, or a `docker exec` before
 * its exec): it entered the container from the host after the agent started and has not
 * exec'd there since. Nothing inside a container can make a task look like this. */
#define VIGIL_FLAG_CONTAINER_SETUP (1u << 1)
/* exec: the executable's path was longer or deeper than the room for it (leading levels missing). */
#define VIGIL_FLAG_EXE_CUT (1u << 2)
/* The kernel sent the task SIGKILL: at this event (the allow-list check, bpf/allowlist.h), or
 * at this exec or the sys_enter of this system call (or before this record: an exit) for the
 * kernel rule kernel_rule names (enforce.bpf.c). */
#define VIGIL_FLAG_KERNEL_KILLED (1u << 3)
/* The kernel was to kill the task at this event and could not (bpf_send_signal failed). */
#define VIGIL_FLAG_KILL_FAILED (1u << 4)

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
	__u32 kernel_rule;   /* 0, or 1 + the kernel rule (enforce.bpf.c) that killed the task: VIGIL_FLAG_KERNEL_KILLED */
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
	__u32 env_len;       /* bytes of env carried (only with capture_env) */
	__u32 env_total;     /* bytes of the full environment */
	__u32 exe_len;       /* bytes of exe, 0 when the kernel's path could not be read */
	__u8 stdio[3];       /* what fds 0, 1, 2 of the new program are: VIGIL_STDIO_* */
	__u8 _pad1[5];       /* keeps filename 8-byte aligned */
	char filename[VIGIL_FILENAME_MAX]; /* as passed to execve: /proc/self/exe, /dev/fd/3 */
	char exe[VIGIL_PATH_MAX];          /* the file executed, by the kernel: /bin/busybox, /memfd:x */
	char args[VIGIL_ARGS_MAX]; /* the record ends after args_len bytes, or after env_len bytes of env */
	char env[VIGIL_ARGS_MAX];
};

/* struct vigil_exec.stdio: what a standard stream of the new program is (close-on-exec
 * fds already closed). Values are part of the record format: append, never renumber. */
enum vigil_stdio_kind {
	VIGIL_STDIO_NONE = 0,   /* fd not open */
	VIGIL_STDIO_FILE = 1,   /* regular file */
	VIGIL_STDIO_DIR = 2,
	VIGIL_STDIO_TTY = 3,    /* a terminal: /dev/pts/N (136-143), tty/ttyS (4), /dev/tty, console, ptmx (5) */
	VIGIL_STDIO_CHR = 4,    /* another character device: /dev/null, /dev/zero */
	VIGIL_STDIO_PIPE = 5,   /* pipe or FIFO */
	VIGIL_STDIO_UNIX = 6,   /* AF_UNIX socket */
	VIGIL_STDIO_INET = 7,   /* AF_INET socket */
	VIGIL_STDIO_INET6 = 8,  /* AF_INET6 socket */
	VIGIL_STDIO_SOCKET = 9, /* a socket of another family: netlink, packet, vsock */
	VIGIL_STDIO_OTHER = 10, /* anything else: anon inode (eventfd, epoll), pidfd, block device */
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

#define VIGIL_STR_MAX 256       /* a string argument copied from user memory */
#define VIGIL_BLOB_MAX 128      /* raw bytes of an argument: a sockaddr, an open_how */
#define VIGIL_NAME_MAX 256       /* a dentry's own name (the kernel's object of a path-only call) */
#define VIGIL_DATA_MAX (2 * VIGIL_STR_MAX + 2 * VIGIL_PATH_MAX + VIGIL_BLOB_MAX + VIGIL_NAME_MAX)

/*
 * How to capture one system call, by number: user space fills the map
 * vigil_syscall_rules from its table (src/events/syscalls.ts), so what crosses to
 * user space is decided there and enforced here ("pushdown").
 */
struct vigil_syscall_rule {
	__u8 emit;            /* VIGIL_EMIT_* ; 0: the syscall is only counted */
	__u8 flags;           /* VIGIL_RULE_* */
	__u8 str_arg[2];      /* arguments that are user strings, VIGIL_ARG_NONE if not */
	__u8 base_str;        /* which of the two strings is resolved against base_arg */
	__u8 base_arg;        /* its dirfd argument, or VIGIL_ARG_CWD */
	__u8 fd_arg;          /* an fd to describe (path or socket), or VIGIL_ARG_RET */
	__u8 blob_arg;        /* an argument pointing at raw bytes */
	__u8 blob_len_arg;    /* the argument holding their length, or VIGIL_ARG_NONE */
	__u8 blob_fixed_len;  /* the length when there is no length argument */
	__u8 base2_arg;       /* the other string's own dirfd argument (rename's, link's new name), or VIGIL_ARG_CWD / NONE */
	__u8 _pad[5];
};

#define VIGIL_ARG_NONE 0xff
#define VIGIL_ARG_RET 0xfe  /* fd_arg: the returned fd (open, accept) */
#define VIGIL_ARG_CWD 0xfd  /* base_arg: the working directory */

#define VIGIL_EMIT_ALWAYS 1
#define VIGIL_EMIT_ON_ERROR 2 /* only failed calls (successful exec is sched_process_exec's) */

#define VIGIL_RULE_PATH_FILTER (1u << 0)  /* subject to the watched path sets */
#define VIGIL_RULE_PORT_FILTER (1u << 1)  /* subject to the watched port set */
#define VIGIL_RULE_BLOB_LEN_PTR (1u << 2) /* blob_len_arg points at a socklen_t (accept) */
#define VIGIL_RULE_TRACK_SOCK (1u << 3)   /* follow the socket's TCP state changes */
#define VIGIL_RULE_KERNEL_NAME (1u << 4)  /* report the name of the inode whose ctime the call changed (chmod, chown) */

/* A socket, as the kernel holds it. Addresses in network order, ports in host order. */
struct vigil_sock {
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 state;
	__u16 local_port;
	__u16 remote_port;
	__u32 _pad0;
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/* sflags of struct vigil_syscall */
#define VIGIL_SC_RAW (1u << 0)         /* streamed: only number, arguments and return value */
#define VIGIL_SC_FD_PATH (1u << 1)     /* fd_path holds the kernel's path of the fd */
#define VIGIL_SC_SOCK (1u << 2)        /* sock describes the fd's socket */
#define VIGIL_SC_PATH_CUT (1u << 3)    /* a path was longer than the room for it */
#define VIGIL_SC_NOT_ENTERED (1u << 4) /* refused before it ran (seccomp): sys_enter never saw it */
#define VIGIL_SC_STR_CUT (1u << 5)     /* a user string was longer than VIGIL_STR_MAX */
#define VIGIL_SC_COMPAT (1u << 6)      /* a 32-bit call (int 0x80, sysenter): nr is the i386 number */
#define VIGIL_SC_ARGS_CHANGED (1u << 7) /* a user string or blob read at sys_exit differs from sys_enter's */
#define VIGIL_SC_ROOT_BASE (1u << 8)   /* base is the task's chroot: the absolute string is below it */
#define VIGIL_SC_X32 (1u << 9)         /* an x32 call (__X32_SYSCALL_BIT): nr without that bit */
#define VIGIL_SC_KNAME_ROOTFS (1u << 10) /* kname is the whole path on the task's root file system */
#define VIGIL_SC_PEER_PATH (1u << 11)  /* fd_path holds the file a unix socket's peer is bound to */
#define VIGIL_SC_READ_AT_EXIT (1u << 12) /* a string or blob could not be read at sys_enter (not in memory yet): read at exit */
#define VIGIL_SC_NOT_ALLOWED (1u << 13) /* from sys_enter: outside the container's allow-list (allowlist.h); raw, ret 0 */

struct vigil_syscall {
	struct vigil_header hdr;
	__s64 ret;
	__u64 args[6];
	__u64 duration_ns;
	__u32 nr;
	__u16 sflags;
	__u16 str_len[2];     /* bytes of each user string, no NUL */
	__u16 base_len;       /* bytes of the directory the based string is relative to */
	__u16 fd_path_len;
	__u16 blob_len;
	__u16 kname_len;      /* bytes of the kernel's own name of the object (VIGIL_RULE_KERNEL_NAME) */
	__u16 base2_len;      /* bytes of the directory the other string is relative to (base2_arg), when not base's */
	__u16 _pad1[2];
	struct vigil_sock sock;
	__u8 data[VIGIL_DATA_MAX]; /* str0 | str1 | base | fd_path | blob | kname | base2; only the used bytes are sent */
};

struct vigil_capability {
	struct vigil_header hdr;
	__s32 cap;
	__s32 ret;            /* 0: granted, else the error (-EPERM) */
};

struct vigil_tcp_state {
	struct vigil_header hdr; /* the task that last used the socket in a tracked call */
	__s32 old_state;
	__s32 new_state;
	struct vigil_sock sock;
};

/*
 * A cgroup made in the reference hierarchy (cgroup:cgroup_mkdir). The header names the
 * task that made it (pid, tgid, comm; other task fields are 0) and carries the cgroup's
 * kernfs id as container_key: the key its tasks' records will carry. The record ends
 * after path_len bytes of path, rounded up to 8; VIGIL_FLAG_TRUNCATED when it was cut.
 */
struct vigil_cgroup {
	struct vigil_header hdr;
	__u64 id;            /* kernfs id of the cgroup (= hdr.container_key) */
	__u32 level;         /* depth below the hierarchy's root */
	__u32 path_len;      /* bytes of path, without the NUL */
	char path[VIGIL_PATH_MAX]; /* from the hierarchy's root: /docker/<id>, /system.slice/docker-<id>.scope */
};

/* Set by user space after load (map "vigil_config", one entry). */
struct vigil_config {
	__u32 host_mnt_ns;   /* mount namespace of the host: its tasks are skipped */
	__u32 cgroup_mode;   /* VIGIL_CGROUP_V2 or VIGIL_CGROUP_V1_MEMORY */
	__u32 enabled;       /* 0 until user space has filled the maps */
	__u32 path_filter;   /* 1: rules with VIGIL_RULE_PATH_FILTER pass only watched paths */
	__u32 port_filter;   /* 1: rules with VIGIL_RULE_PORT_FILTER pass only watched ports */
	__u32 cap_dedup;     /* 1: one capability record per process, capability and outcome */
	__u32 count_syscalls;/* 1: count every syscall per container (vigil_syscall_counts) */
	__u32 capture_env;   /* 1: exec records carry the environment (it may hold secrets: opt-in) */
	__u64 started_ns;    /* CLOCK_MONOTONIC when the agent enabled the programs */
	__u32 allowlists;    /* 1: check each container's calls against its allow-list (vigil_allowlists) */
	__u32 _pad0;
};

/*
 * What the kernel remembers of a container task (task storage vigil_container_tasks).
 * User space writes one too, through a pidfd, for a process that left its container's
 * mount namespace before the agent started.
 */
struct vigil_task_state {
	__u64 key;   /* the container key it was first seen with */
	__u32 flags; /* VIGIL_TASK_* */
	__u32 kill_rule; /* 0, or 1 + the kernel rule enforce.bpf.c killed the task for (copied into every later header) */
	/* Of a process's group leader: capabilities reported since its last exec, [0]
	 * granted, [1] denied, bit = capability number (cap_dedup). */
	__u64 caps_seen[2];
};
#define VIGIL_TASK_SETUP (1u << 0) /* the runtime preparing the container: see VIGIL_FLAG_CONTAINER_SETUP */
#define VIGIL_TASK_COMPAT_SEEN (1u << 1) /* of a group leader: a compat call of the process was reported */

/* Key of vigil_syscall_counts. nr carries the ABI above bit 16 (VIGIL_ABI_*); a number
 * beyond any table (>= 0xffff) is counted as 0xffff of its ABI. */
#define VIGIL_ABI_X86_64 0
#define VIGIL_ABI_I386 1
#define VIGIL_ABI_X32 2
struct vigil_count_key {
	__u64 container_key;
	__u32 nr;
	__u32 _pad0;
};

/*
 * A container's system-call allow-list (map vigil_allowlists, by container key), one bit
 * per call: the x86-64 number, VIGIL_MAX_SYSCALL + the i386 number of a compat call, and
 * VIGIL_ALLOW_OTHER for x32 calls and numbers beyond any table (never allowed).
 */
#define VIGIL_MAX_SYSCALL 512
#define VIGIL_ALLOW_WORDS 32                 /* a power of two, >= (2 * VIGIL_MAX_SYSCALL + 1) / 64 */
#define VIGIL_ALLOW_OTHER (2 * VIGIL_MAX_SYSCALL)
#define VIGIL_AL_KILL (1u << 0)         /* SIGKILL the task at a call outside the list */
#define VIGIL_AL_ALLOW_ALL (1u << 1)    /* not checked (the image could not be analysed, fail-open, or the check is off) */
#define VIGIL_AL_REPORT_EVERY (1u << 2) /* report every call outside the list, not the first per call */
struct vigil_allowlist {
	__u64 allowed[VIGIL_ALLOW_WORDS];
	__u64 reported[VIGIL_ALLOW_WORDS]; /* reported once already (set by the kernel) */
	__u32 flags;                       /* VIGIL_AL_* */
	__u32 _pad0;
};
/* Calls made before the container's list was loaded (map vigil_allow_pending). */
struct vigil_allow_pending {
	__u64 seen[VIGIL_ALLOW_WORDS];
};

/* Key of the watched path tries (prefixes as written, suffixes reversed). */
struct vigil_path_key {
	__u32 prefixlen;     /* bits */
	__u8 path[VIGIL_STR_MAX];
};

#define VIGIL_CGROUP_V2 0
#define VIGIL_CGROUP_V1_MEMORY 1

/*
 * io_uring (io_uring.bpf.c). Work submitted through a ring never passes sys_enter or
 * sys_exit, so it is reported from the io_uring tracepoints: a ring's creation, its
 * register calls, and each request of the kinds below at submission, read from the
 * kernel's own copy of the request (made when it was prepared: names are the kernel's
 * struct filename, addresses the kernel's copy of the sockaddr), so a thread changing the
 * user's buffers after submission changes nothing here. The result is not reported.
 */
#define VIGIL_URING_SETUP 0x100    /* op: io_uring_setup made a ring (fd; arg0 sq_entries, arg1 cq_entries, arg2 flags) */
#define VIGIL_URING_REGISTER 0x101 /* op: io_uring_register (arg0 opcode, arg1 nr_files, arg2 nr_bufs, ret) */

struct vigil_io_uring {
	struct vigil_header hdr;
	__u32 op;          /* IORING_OP_* of a request, or VIGIL_URING_* */
	__s32 fd;          /* the request's fd (or directory fd of a name), the ring's fd for setup */
	__u64 arg0;        /* open: flags; mkdir: mode; socket: domain; rename/link: flags */
	__u64 arg1;        /* open: mode; socket: type; rename/link: the second name's directory fd */
	__u64 arg2;        /* socket: protocol */
	__s64 ret;         /* register: its result; else 0 */
	__u16 name_len;    /* bytes of the first name (no NUL) */
	__u16 name2_len;   /* bytes of the second name: rename/link target, symlink's link path */
	__u16 base_len;    /* bytes of the directory a relative first name is relative to */
	__u16 addr_len;    /* bytes of sockaddr (connect, bind) */
	__u16 uflags;      /* VIGIL_URING_F_* */
	__u16 _pad0[3];
	__u8 data[2 * VIGIL_STR_MAX + VIGIL_PATH_MAX + VIGIL_BLOB_MAX]; /* name | name2 | base | addr: used bytes only */
};
#define VIGIL_URING_F_NAME_CUT (1u << 0) /* a name was longer than VIGIL_STR_MAX */
#define VIGIL_URING_F_BASE_CUT (1u << 1) /* the directory's path was cut */
#define VIGIL_URING_F_SQPOLL (1u << 2)   /* submitted by the ring's kernel polling thread */

/*
 * Loss accounting and per-container budget (common.h: vigil_submit). A record that is not
 * queued is counted under its container key, kind and why (vigil_lost_by_container), and
 * host-wide by kind (vigil_lost for a full ring, vigil_shed for a spent budget).
 */
#define VIGIL_LOSS_RING_FULL 0 /* no room in the ring buffer */
#define VIGIL_LOSS_BUDGET 1    /* the container spent its budget while the ring was under pressure */

struct vigil_lost_key {
	__u64 container_key;
	__u32 kind;          /* enum vigil_kind */
	__u32 reason;        /* VIGIL_LOSS_* */
};

/* Set by user space (map "vigil_budget_config", one entry). 0 in rate disables the budget. */
struct vigil_budget_config {
	__u64 rate;           /* tokens per second each container may spend while the ring is under pressure */
	__u64 burst;          /* tokens a container's bucket holds at most */
	__u64 pressure_bytes; /* unread bytes in the ring from which budgets are enforced */
	__u64 wakeup_bytes;   /* unread bytes from which a record wakes the reader (below: user space polls on a timer) */
};

/* A container's token bucket (vigil_budgets). tokens may dip below 0 under races: see vigil_take_tokens. */
struct vigil_bucket {
	__s64 tokens;
	__u64 last_ns;       /* bpf_ktime_get_ns of the last refill */
	__u64 refused_ns;    /* bpf_ktime_get_ns of its last record refused for budget: 0, never */
};

#endif
