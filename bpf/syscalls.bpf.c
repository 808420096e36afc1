// SPDX-License-Identifier: GPL-2.0
/*
 * System calls of container tasks. sys_enter counts every call per container and ABI
 * (x86-64, i386 through int 0x80 or sysenter, x32), and for the calls a rule asks for (or
 * every call of a streamed container) saves the arguments and reads the user memory they
 * point at (names, sockaddrs, blobs) before the call runs; sys_exit reads them again and
 * marks the record when they changed meanwhile (a racing thread), adds what the kernel
 * itself holds (the path of an fd, a socket's addresses, the name of the inode a chmod
 * changed, the directory a relative path is based on, the task's chroot) and applies the
 * watched path and port filters. The state of a call in flight lives in task storage:
 * it lives as long as the thread, however long the call blocks, and no flood evicts it.
 */
#include "common.h"
#include "paths.h"

char LICENSE[] SEC("license") = "GPL";

/* Rule slots: the x86-64 number, or VIGIL_MAX_SYSCALL + the i386 number of a compat call. */
#define VIGIL_RULE_SLOTS (2 * VIGIL_MAX_SYSCALL)
#define VIGIL_AT_FDCWD -100
#define VIGIL_AF_UNIX 1
#define VIGIL_TS_COMPAT 0x0002          /* thread_info.status: a 32-bit call is running */
#define VIGIL_X32_SYSCALL_BIT 0x40000000
#define VIGIL_DATA_MASK (4 * VIGIL_PATH_MAX - 1) /* >= VIGIL_DATA_MAX: keeps data offsets in bounds */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_RULE_SLOTS);
	__type(key, __u32);
	__type(value, struct vigil_syscall_rule);
} vigil_syscall_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_count_key);
	__type(value, __u64);
} vigil_syscall_counts SEC(".maps");

/* Containers (by key) whose every system call is streamed raw. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} vigil_stream SEC(".maps");

/* A call in flight: what sys_enter saw, for sys_exit (and the ctime tracepoints) to use. */
#define VIGIL_IN_ACTIVE (1u << 0)  /* sys_enter saved a call that has not exited */
#define VIGIL_IN_RAW (1u << 1)     /* streamed */
#define VIGIL_IN_COMPAT (1u << 2)
#define VIGIL_IN_KNAME (1u << 3)   /* record the inode whose ctime changes (VIGIL_RULE_KERNEL_NAME) */
#define VIGIL_IN_X32 (1u << 4)
#define VIGIL_IN_FORCE (1u << 5)   /* the process's first compat call: reported with or without a rule */
#define VIGIL_IN_STR_CUT (1u << 6)
#define VIGIL_IN_ROOT_PLAIN (1u << 7) /* root_mnt/root_dentry are the namespace's root: no chroot */
/* sys_enter could not read string 0 / 1 / the blob: its page was not in memory yet (a fresh
 * program's data; the kernel's own copy faults it in, a BPF read cannot). */
#define VIGIL_IN_FAULT0 (1u << 8)
#define VIGIL_IN_FAULT_BLOB (1u << 10)

struct vigil_inflight {
	__u64 args[6];
	__u64 enter_ns;
	__u32 slot;          /* rule slot (VIGIL_RULE_SLOTS) */
	__u32 nr;            /* the number as the task passed it (i386 number of a compat call) */
	__u16 flags;         /* VIGIL_IN_* */
	__u16 str_len[2];
	__u16 blob_len;
	__u16 kname_len;
	__u16 kname_flags;   /* 1: kname is whole (to its file system's root); 2: on the task's root's file system */
	__u16 kname_off;
	__u16 _pad[1];
	/* The task's root as last looked at, and whether it is the namespace's root (a cache:
	 * a chroot changes it rarely, and resolving it is a path walk). */
	void *root_mnt;
	void *root_dentry;
	/* The task's root when the call started: an absolute name is resolved below it (a
	 * chroot call changes it before its exit). */
	struct path enter_root;
	__u8 str[2][VIGIL_STR_MAX];
	__u8 blob[VIGIL_BLOB_MAX];
	/* The kernel's path of a changed inode, assembled backwards to end at VIGIL_NAME_MAX and
	 * starting at kname_off; twice the room so a bounded offset plus a bounded length fit. */
	__u8 kname[2 * VIGIL_NAME_MAX];
};

/* Task storage: it lives and dies with the thread, so a call parked for hours is not lost
 * to a flood of others, and exec's thread-id change (de_thread) cannot mismatch it. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_inflight);
} vigil_inflight_tasks SEC(".maps");

/* Room for the arguments of a call sys_enter never saw (see vigil_sys_exit). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_inflight);
} vigil_inflight_scratch SEC(".maps");

/* The state of the call the current task has in flight, or NULL (host tasks: one pointer check). */
static __always_inline struct vigil_inflight *inflight_of(struct task_struct *task)
{
	if (bpf_core_field_exists(task->bpf_storage) && !task->bpf_storage)
		return NULL;
	return bpf_task_storage_get(&vigil_inflight_tasks, task, 0, 0);
}

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_path_key);
	__type(value, __u8);
} vigil_path_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_path_key);
	__type(value, __u8);
} vigil_path_suffixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} vigil_ports SEC(".maps");

static __always_inline int port_watched(__u16 port)
{
	return port && bpf_map_lookup_elem(&vigil_ports, &port) != NULL;
}

/* Argument i of the call: x86-64 registers, or for a compat call the i386 ones, 32 bits wide. */
static __always_inline __u64 arg_of(struct pt_regs *regs, int i, int compat)
{
	if (compat) {
		switch (i) {
		case 0: return (__u32)BPF_CORE_READ(regs, bx);
		case 1: return (__u32)BPF_CORE_READ(regs, cx);
		case 2: return (__u32)BPF_CORE_READ(regs, dx);
		case 3: return (__u32)BPF_CORE_READ(regs, si);
		case 4: return (__u32)BPF_CORE_READ(regs, di);
		default: return (__u32)BPF_CORE_READ(regs, bp);
		}
	}
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
}

#include "allowlist.h"

/* Reads a user string into dst (VIGIL_STR_MAX bytes); returns its length without the NUL. */
static __always_inline __u16 read_user_str(__u8 *dst, __u64 uptr, __u16 *flags, __u16 fault)
{
	long n = bpf_probe_read_user_str(dst, VIGIL_STR_MAX, (void *)uptr);
	if (n < 0)
		*flags |= fault;
	if (n <= 1)
		return 0;
	if (n == VIGIL_STR_MAX)
		*flags |= VIGIL_IN_STR_CUT; /* the string filled the room: it may go on */
	return n - 1;
}

/* How many raw bytes of the blob argument to copy. */
static __always_inline __u32 blob_len_of(struct vigil_syscall_rule *rule, __u64 *args)
{
	__u32 blen = rule->blob_fixed_len;
	__u8 la = rule->blob_len_arg;
	if (la < 6) {
		if (rule->flags & VIGIL_RULE_BLOB_LEN_PTR) {
			__u32 l = 0;
			bpf_probe_read_user(&l, sizeof(l), (void *)args[la & 7]);
			blen = l;
		} else {
			blen = args[la & 7];
		}
	}
	if (blen > VIGIL_BLOB_MAX)
		blen = VIGIL_BLOB_MAX;
	return blen;
}

/* Is the task in a 32-bit call (int 0x80, sysenter, a compat syscall instruction)? The
 * kernel sets TS_COMPAT on entry and clears it on the way back to user space. */
static __always_inline int in_compat_call(struct task_struct *task)
{
	return (BPF_CORE_READ(task, thread_info.status) & VIGIL_TS_COMPAT) != 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	/* The ABI: the i386 table for a compat call, x32 for a number with __X32_SYSCALL_BIT
	 * (counted and reported, never dropped: this kernel may refuse it, the attempt matters). */
	int compat = in_compat_call(task);
	__u32 abi = compat ? VIGIL_ABI_I386 : VIGIL_ABI_X86_64;
	long n = id;
	if (!compat && (n & VIGIL_X32_SYSCALL_BIT)) {
		abi = VIGIL_ABI_X32;
		n &= ~(long)VIGIL_X32_SYSCALL_BIT;
	}
	__u32 cnr = (n < 0 || n >= 0xffff) ? 0xffff : (__u32)n;

	if (cfg->count_syscalls) {
		struct vigil_count_key ck = { .container_key = key, .nr = (abi << 16) | cnr };
		__u64 *c = bpf_map_lookup_elem(&vigil_syscall_counts, &ck);
		if (c) {
			*c += 1;
		} else {
			__u64 one = 1;
			bpf_map_update_elem(&vigil_syscall_counts, &ck, &one, BPF_NOEXIST);
		}
	}

	__u32 slot = abi == VIGIL_ABI_X32 || cnr >= VIGIL_MAX_SYSCALL ? VIGIL_RULE_SLOTS : (compat ? VIGIL_MAX_SYSCALL + cnr : cnr);
	/* The slot is the call's bit in the allow-list too (VIGIL_RULE_SLOTS = VIGIL_ALLOW_OTHER). */
	if (cfg->allowlists)
		vigil_check_allowlist(task, key, slot, regs, (__u32)n,
				      abi == VIGIL_ABI_X32 ? VIGIL_SC_X32 : compat ? VIGIL_SC_COMPAT : 0, compat);
	struct vigil_syscall_rule *rule = bpf_map_lookup_elem(&vigil_syscall_rules, &slot);
	__u32 raw = bpf_map_lookup_elem(&vigil_stream, &key) != NULL;
	/* A 64-bit process's first 32-bit (or x32) call is reported whatever the call: the
	 * ABI switch itself is what a policy judges; later ones only when a rule asks. */
	__u32 force = 0;
	if (abi != VIGIL_ABI_X86_64) {
		struct vigil_task_state *ls = vigil_task_state(task->group_leader);
		if (ls && !(ls->flags & VIGIL_TASK_COMPAT_SEEN)) {
			ls->flags |= VIGIL_TASK_COMPAT_SEEN;
			force = 1;
		}
	}
	int rich = rule && rule->emit;
	if (!raw && !force && !rich)
		return 0;

	struct vigil_inflight *in = bpf_task_storage_get(&vigil_inflight_tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return 0;
	__u16 flags = VIGIL_IN_ACTIVE | (raw ? VIGIL_IN_RAW : 0) | (compat ? VIGIL_IN_COMPAT : 0) |
		      (abi == VIGIL_ABI_X32 ? VIGIL_IN_X32 : 0) | (force ? VIGIL_IN_FORCE : 0) |
		      (rich && (rule->flags & VIGIL_RULE_KERNEL_NAME) ? VIGIL_IN_KNAME : 0);
	in->slot = slot;
	in->nr = (__u32)id;
	in->enter_ns = bpf_ktime_get_ns();
	for (int i = 0; i < 6; i++)
		in->args[i] = arg_of(regs, i, compat);
	in->str_len[0] = in->str_len[1] = 0;
	in->blob_len = in->kname_len = 0;

	if (rich) {
		if (rule->base_arg != VIGIL_ARG_NONE)
			in->enter_root = BPF_CORE_READ(task, fs, root);
		/* User memory now, before the call runs: what the kernel is about to read. sys_exit
		 * reads it again; a difference is a racing writer, and the record says so. */
		for (int s = 0; s < 2; s++) {
			__u8 a = rule->str_arg[s];
			if (a < 6) {
				__builtin_memset(in->str[s], 0, VIGIL_STR_MAX); /* zero-padded: compared whole at exit */
				in->str_len[s] = read_user_str(in->str[s], in->args[a], &flags, VIGIL_IN_FAULT0 << s);
			}
		}
		__u8 ra = rule->blob_arg;
		/* accept's sockaddr is written by the call: sys_exit reads it. */
		if (ra < 6 && !(rule->flags & VIGIL_RULE_BLOB_LEN_PTR)) {
			__u32 blen = blob_len_of(rule, in->args);
			barrier_var(blen);
			blen &= VIGIL_BLOB_MAX * 2 - 1;
			__builtin_memset(in->blob, 0, VIGIL_BLOB_MAX);
			if (blen > 0 && blen <= VIGIL_BLOB_MAX) {
				if (bpf_probe_read_user(in->blob, blen, (void *)in->args[ra]) == 0)
					in->blob_len = blen;
				else
					flags |= VIGIL_IN_FAULT_BLOB;
			}
		}
	}
	in->flags = flags;

	/* A connect's first state changes happen before it returns: start following the
	 * socket now, with this task as its owner. */
	if (rich && (rule->flags & VIGIL_RULE_TRACK_SOCK) && rule->fd_arg < 6) {
		struct sock *sk = vigil_file_sock(vigil_fd_file(task, (__s64)(int)in->args[rule->fd_arg]));
		/* Under the port filter, a socket of no watched port is not followed: its state
		 * changes would cross the filter its calls are held to. The remote port is the
		 * connect's sockaddr (family, then port in network order), as read above. */
		int follow = 1;
		if (sk && (rule->flags & VIGIL_RULE_PORT_FILTER) && cfg->port_filter) {
			__u16 remote = 0;
			if (in->blob_len >= 4)
				remote = ((__u16)in->blob[2] << 8) | in->blob[3];
			follow = port_watched(BPF_CORE_READ(sk, __sk_common.skc_num)) || port_watched(remote);
		}
		/* The owner waits in the task's own storage: the call's first state change
		 * (SYN_SENT, LISTEN) runs in this task and moves it into the socket's storage. */
		if (follow && sk && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP) {
			struct vigil_sock_pending *pend = bpf_task_storage_get(&vigil_sock_pending, task, 0,
									       BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (pend) {
				vigil_fill_header(&pend->owner, VIGIL_KIND_TCP_STATE, task, key);
				pend->sk = (__u64)sk;
			}
		}
	}
	return 0;
}

#define VIGIL_KNAME_DEPTH 16

/*
 * The inode whose change time a call in flight changed: for chmod and chown (and their
 * kin) the object the kernel acted on, whatever name a racing thread left in user memory.
 * Its path within its own file system (a dentry of it, walked up its parents to that file
 * system's root, at most VIGIL_KNAME_DEPTH levels) goes in the record, and whether that file
 * system is the one the task's root is on: then the path is the container's own name of
 * the file, and user space compares it with the name read whole; else (a bind mount, a
 * volume) the last component only. The last update wins: an overlayfs copy-up touches a
 * temporary file first, then the target. One of three tracepoints fires for every ctime
 * update, by file system and timestamp kind.
 */
static __always_inline void note_ctime(struct inode *inode)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vigil_inflight *in = inflight_of(task);
	if (!in || (in->flags & (VIGIL_IN_ACTIVE | VIGIL_IN_KNAME)) != (VIGIL_IN_ACTIVE | VIGIL_IN_KNAME))
		return;
	struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);
	if (!first)
		return;
	struct dentry *d = (void *)first - bpf_core_field_offset(struct dentry, d_u.d_alias);
	struct super_block *root_sb = BPF_CORE_READ(task, fs, root.mnt, mnt_sb);
	/* Assembled backwards, ending at VIGIL_NAME_MAX. */
	__u32 off = VIGIL_NAME_MAX;
	int whole = 0;
	for (int i = 0; i < VIGIL_KNAME_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (parent == d) {
			whole = 1;
			break;
		}
		struct qstr name = BPF_CORE_READ(d, d_name);
		__u32 len = name.len & (VIGIL_NAME_MAX - 1);
		if (len == 0 || len + 1 > off)
			break;
		off -= len;
		bpf_probe_read_kernel(&in->kname[off & (VIGIL_NAME_MAX - 1)], len, name.name);
		off -= 1;
		in->kname[off & (VIGIL_NAME_MAX - 1)] = '/';
		d = parent;
	}
	if (off >= VIGIL_NAME_MAX || off == 0)
		return;
	/* whole: the walk reached the file system's root; same: that is the task's root's file system */
	in->kname_flags = (whole ? 1 : 0) | (BPF_CORE_READ(d, d_sb) == root_sb ? 2 : 0);
	in->kname_off = off;
	in->kname_len = VIGIL_NAME_MAX - off;
}

SEC("tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(vigil_ctime_set, struct inode *inode, struct timespec64 *ts)
{
	note_ctime(inode);
	return 0;
}

SEC("tp_btf/ctime_xchg_skip")
int BPF_PROG(vigil_ctime_skip, struct inode *inode, struct timespec64 *ctime)
{
	note_ctime(inode);
	return 0;
}

SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(vigil_ctime_xchg, struct inode *inode, u32 old, u32 new, u32 cur)
{
	note_ctime(inode);
	return 0;
}

/* Copies the path of `p` into the record at *pos; returns its length. */
static __always_inline __u16 put_path(struct vigil_syscall *e, __u32 *pos, struct vigil_pathwork *work, struct path *p,
				      struct task_struct *task)
{
	__u32 at = *pos;
	if (at > VIGIL_DATA_MAX - VIGIL_PATH_MAX)
		return 0;
	int cut = 0;
	__u32 len = copy_path(work, p, task, &e->data[at & VIGIL_DATA_MASK], &cut);
	if (cut)
		e->sflags |= VIGIL_SC_PATH_CUT;
	*pos = at + len;
	return len;
}

#define VIGIL_SUBJECT_MASK (2 * VIGIL_PATHBUF - 1)

/* Copies len bytes of the record's data at `at` into the subject buffer at `to`. */
static __always_inline __u32 put_subject(struct vigil_syscall *e, struct vigil_pathwork *work, __u32 to, __u32 at, __u32 len)
{
	len &= 2 * VIGIL_PATH_MAX - 1;
	if (len > VIGIL_PATH_MAX || to > VIGIL_PATHBUF)
		return to;
	bpf_probe_read_kernel(&work->buf[to & (VIGIL_PATHBUF - 1)], len, &e->data[at & VIGIL_DATA_MASK]);
	return to + len;
}

struct subject_ctx {
	__u32 len;
	__u32 odd; /* set by scan_one: the name is not in canonical form */
};

/* Looks at one byte of the subject: does a '//', '/./' or '/../' start here? (a bpf_loop callback) */
static long scan_one(__u64 i, void *data)
{
	struct subject_ctx *s = data;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work || i + 1 >= s->len)
		return 1;
	if (work->buf[i & VIGIL_SUBJECT_MASK] != '/')
		return 0;
	char c1 = work->buf[(i + 1) & VIGIL_SUBJECT_MASK];
	char c2 = i + 2 < s->len ? work->buf[(i + 2) & VIGIL_SUBJECT_MASK] : '/';
	char c3 = i + 3 < s->len ? work->buf[(i + 3) & VIGIL_SUBJECT_MASK] : '/';
	if (c1 == '/' || (c1 == '.' && (c2 == '/' || (c2 == '.' && c3 == '/')))) {
		s->odd = 1;
		return 1;
	}
	return 0;
}

/* Copies one byte of the subject, from its end, into the suffix key (a bpf_loop callback). */
static long reverse_one(__u64 i, void *data)
{
	struct subject_ctx *s = data;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work || i >= s->len)
		return 1;
	work->key.path[i & (VIGIL_STR_MAX - 1)] = work->buf[(s->len - 1 - i) & VIGIL_SUBJECT_MASK];
	return 0;
}

/*
 * Does the subject (work->buf[0, len)) start with a watched prefix or end with a watched
 * suffix? A name the kernel did not resolve ('..', '.', '//' in it) passes: the sets are
 * written for canonical paths, and such a name is how one would slip past them.
 */
static __always_inline int path_watched(struct vigil_pathwork *work, __u32 len, int canonical)
{
	if (len == 0)
		return 0;
	struct subject_ctx s = { .len = len };
	if (!canonical) {
		bpf_loop(2 * VIGIL_PATHBUF, scan_one, &s, 0);
		if (s.odd)
			return 1;
	}
	/* Prefixes are at most VIGIL_STR_MAX bytes: the subject's first bytes decide. A NUL
	 * after a subject that fits lets an entry ending in NUL match that exact path only. */
	__u32 plen = len > VIGIL_STR_MAX ? VIGIL_STR_MAX : len;
	barrier_var(plen);
	plen &= 2 * VIGIL_STR_MAX - 1;
	if (plen > VIGIL_STR_MAX)
		return 0;
	bpf_probe_read_kernel(work->key.path, plen, work->buf);
	if (plen < VIGIL_STR_MAX) {
		work->key.path[plen & (VIGIL_STR_MAX - 1)] = 0;
		work->key.prefixlen = (plen + 1) * 8;
	} else {
		work->key.prefixlen = plen * 8;
	}
	/* The longest watched prefix decides: value 1 watches, 0 excludes (/etc/ld.so.cache under /etc/). */
	__u8 *verdict = bpf_map_lookup_elem(&vigil_path_prefixes, &work->key);
	if (verdict)
		return *verdict;
	/* Suffixes: the subject's last bytes, reversed. */
	bpf_loop(VIGIL_STR_MAX, reverse_one, &s, 0);
	return bpf_map_lookup_elem(&vigil_path_suffixes, &work->key) != NULL;
}

/*
 * Does the record's subject pass the watched path sets? The subject is the kernel's path
 * of the fd when there is one; else the string, joined to the directory it is relative
 * to (a failed open). A global function: verified once on its own, which keeps the
 * verifier's work on vigil_sys_exit within bounds.
 */
__noinline int vigil_subject_watched(struct vigil_syscall *e, struct vigil_pathwork *work, int based_string)
{
	if (!e || !work)
		return 1;
	/* A name cut at its bound cannot be judged: it passes. */
	if (e->sflags & (VIGIL_SC_STR_CUT | VIGIL_SC_PATH_CUT))
		return 1;
	__u32 s0 = e->str_len[0], s1 = e->str_len[1], base = e->base_len;
	if (e->fd_path_len)
		return path_watched(work, put_subject(e, work, 0, s0 + s1 + base, e->fd_path_len), 1);
	__u32 len = 0;
	if (base) {
		len = put_subject(e, work, 0, s0 + s1, base);
		/* A chroot's base is followed by an absolute string: no '/' between. */
		if (len > 0 && !(e->sflags & VIGIL_SC_ROOT_BASE) && work->buf[(len - 1) & VIGIL_SUBJECT_MASK] != '/') {
			work->buf[len & VIGIL_SUBJECT_MASK] = '/';
			len++;
		}
	}
	if (based_string)
		len = put_subject(e, work, len, s0, s1);
	else
		len = put_subject(e, work, len, 0, s0);
	return path_watched(work, len, 0);
}

/*
 * Writes the directory the record's other string (rename's, link's new name: not
 * base_str) is relative to at data offset `at`, when that string is relative and its
 * directory (rule->base2_arg) is not the one already in the record as base (the first
 * name was absolute, so none was read, or it names another directory fd). Returns its
 * length: 0 when it is not needed, not there, or there is no room. A global function,
 * verified once on its own: inline, its branches took vigil_sys_exit past the verifier's
 * bound on instructions.
 */
__noinline __u32 vigil_put_base2(struct vigil_syscall *e, __u32 at, struct vigil_syscall_rule *rule, struct vigil_inflight *in)
{
	struct vigil_pathwork *work = vigil_pathwork_buf();
	struct task_struct *task = bpf_get_current_task_btf();
	if (!e || !rule || !in || !work || at > VIGIL_DATA_MAX - VIGIL_PATH_MAX)
		return 0;
	__u8 b2 = rule->base2_arg, ba = rule->base_arg;
	if (!(b2 < 6 || b2 == VIGIL_ARG_CWD))
		return 0;
	__u32 other = (rule->base_str & 1) ^ 1;
	__u32 olen = other ? e->str_len[1] : e->str_len[0];
	__u32 oat = other ? e->str_len[0] : 0;
	if (olen == 0 || oat >= VIGIL_DATA_MAX || e->data[oat] == '/')
		return 0;
	__s64 d2 = b2 < 6 ? (__s64)(int)in->args[b2 & 7] : VIGIL_AT_FDCWD;
	__s64 d1 = ba < 6 ? (__s64)(int)in->args[ba & 7] : VIGIL_AT_FDCWD;
	if (e->base_len > 0 && !(e->sflags & VIGIL_SC_ROOT_BASE) && d1 == d2)
		return 0; /* base is its directory too */
	struct path p;
	if (d2 == VIGIL_AT_FDCWD) {
		p = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *df = vigil_fd_file(task, d2);
		if (!df)
			return 0;
		p = BPF_CORE_READ(df, f_path);
	}
	/* Bounded here, right before the use: the check above was on another register. */
	__u32 off = at & (2 * VIGIL_PATHBUF - 1);
	barrier_var(off);
	if (off > VIGIL_DATA_MAX - VIGIL_PATH_MAX)
		return 0;
	int cut = 0;
	__u32 len = copy_path(work, &p, task, &e->data[off], &cut);
	if (cut)
		e->sflags |= VIGIL_SC_PATH_CUT;
	return len;
}

/* Do two zero-padded VIGIL_STR_MAX-byte buffers differ? No branches: the verifier walks it once. */
static __always_inline int str_differs(const __u8 *saved, const __u8 *now)
{
	__u64 x = 0;
#pragma unroll
	for (int i = 0; i < VIGIL_STR_MAX / 8; i++)
		x |= *(const __u64 *)&saved[i * 8] ^ *(const __u64 *)&now[i * 8];
	return x != 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	long id = BPF_CORE_READ(regs, orig_ax);
	struct vigil_inflight *in = inflight_of(task);
	if (in && (in->flags & VIGIL_IN_ACTIVE)) {
		in->flags &= ~VIGIL_IN_ACTIVE;
		/* A number changed since entry (a tracer's doing) is not the call saved. */
		if (in->nr != (__u32)id)
			in = NULL;
	} else {
		in = NULL;
	}
	int not_entered = 0;
	__u32 zero = 0;
	if (!in) {
		/*
		 * seccomp refuses a call before sys_enter, but sys_exit still fires with the
		 * original number and untouched argument registers: report refused calls a
		 * rule asks for (an unshare blocked by the container's profile matters).
		 */
		int compat = in_compat_call(task);
		if (ret >= 0 || id < 0 || id >= VIGIL_MAX_SYSCALL)
			return 0;
		__u32 slot0 = compat ? VIGIL_MAX_SYSCALL + (__u32)id : (__u32)id;
		struct vigil_syscall_rule *r0 = bpf_map_lookup_elem(&vigil_syscall_rules, &slot0);
		if (!r0 || !r0->emit)
			return 0;
		in = bpf_map_lookup_elem(&vigil_inflight_scratch, &zero);
		if (!in)
			return 0;
		in->slot = slot0;
		in->nr = (__u32)id;
		in->flags = compat ? VIGIL_IN_COMPAT : 0;
		in->enter_ns = bpf_ktime_get_ns();
		in->str_len[0] = in->str_len[1] = 0;
		in->blob_len = in->kname_len = 0;
		for (int i = 0; i < 6; i++)
			in->args[i] = arg_of(regs, i, compat);
		not_entered = 1;
	}
	__u32 slot = in->slot;
	struct vigil_syscall_rule *rule = bpf_map_lookup_elem(&vigil_syscall_rules, &slot);
	struct vigil_syscall *e = vigil_scratch_buf();
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!e || !work)
		return 0;
	__u16 inf = in->flags;
	int rich = rule && rule->emit;
	/* Streamed, or a process's first compat call with no capture rule: number and arguments. */
	int raw = (inf & VIGIL_IN_RAW) || ((inf & VIGIL_IN_FORCE) && !rich);
	if (!raw && !rich)
		return 0;
	if (!raw && !(inf & VIGIL_IN_FORCE) && rule && rule->emit == VIGIL_EMIT_ON_ERROR && ret >= 0)
		return 0;

	e->ret = ret;
	for (int i = 0; i < 6; i++)
		e->args[i] = in->args[i];
	e->duration_ns = bpf_ktime_get_ns() - in->enter_ns;
	e->nr = in->nr & ~(__u32)VIGIL_X32_SYSCALL_BIT;
	e->sflags = (raw ? VIGIL_SC_RAW : 0) | (not_entered ? VIGIL_SC_NOT_ENTERED : 0) |
		    ((inf & VIGIL_IN_COMPAT) ? VIGIL_SC_COMPAT : 0) | ((inf & VIGIL_IN_X32) ? VIGIL_SC_X32 : 0) |
		    ((inf & VIGIL_IN_STR_CUT) ? VIGIL_SC_STR_CUT : 0);
	e->str_len[0] = e->str_len[1] = 0;
	e->base_len = e->fd_path_len = e->blob_len = e->kname_len = 0;
	e->base2_len = 0;
	e->_pad1[0] = e->_pad1[1] = 0;
	__builtin_memset(&e->sock, 0, sizeof(e->sock));
	__u32 pos = 0;
	__u8 fl = rich ? rule->flags : 0;
	struct sock *track_sk = NULL;
	__u32 blob_at = 0;

	if (rich) {
		/* user strings: as read before the call, and again now */
		for (int s = 0; s < 2; s++) {
			__u8 a = rule->str_arg[s];
			if (a >= 6)
				continue;
			__builtin_memset(work->buf, 0, VIGIL_STR_MAX);
			long n = bpf_probe_read_user_str(work->buf, VIGIL_STR_MAX, (void *)in->args[a]);
			if (n <= 1)
				__builtin_memset(work->buf, 0, 8); /* an empty or unreadable name reads as "" at entry too */
			if (not_entered || (inf & (VIGIL_IN_FAULT0 << s))) {
				/* Not read before the call (refused before entry, or its page was not in
				 * memory then): now is all there is, and the record says so. */
				bpf_probe_read_kernel(in->str[s], VIGIL_STR_MAX, work->buf);
				in->str_len[s] = n <= 1 ? 0 : n - 1;
				if (n == VIGIL_STR_MAX)
					e->sflags |= VIGIL_SC_STR_CUT;
				if (!not_entered && n > 1)
					e->sflags |= VIGIL_SC_READ_AT_EXIT;
			}
			__u32 len = in->str_len[s] & (VIGIL_STR_MAX - 1);
			__u32 at = pos;
			if (at > VIGIL_DATA_MAX - VIGIL_STR_MAX)
				continue;
			if (len > 0)
				bpf_probe_read_kernel(&e->data[at & VIGIL_DATA_MASK], len, in->str[s]);
			e->str_len[s] = len;
			pos = at + len;
			if (str_differs(in->str[s], (const __u8 *)work->buf))
				e->sflags |= VIGIL_SC_ARGS_CHANGED;
		}
		/* the directory a relative string is based on; for an absolute one, the chroot */
		__u8 bs = rule->base_str & 1;
		__u8 ba = rule->base_arg;
		__u32 based_at = bs ? e->str_len[0] : 0;
		char first = 0;
		bpf_probe_read_kernel(&first, 1, &e->data[based_at & VIGIL_DATA_MASK]);
		if (e->str_len[bs] > 0 && ba != VIGIL_ARG_NONE) {
			struct path base;
			int have = 0, chroot_check = 0;
			if (first != '/') {
				__s64 dirfd = ba < 6 ? (__s64)(int)in->args[ba] : VIGIL_AT_FDCWD;
				if (ba == VIGIL_ARG_CWD || dirfd == VIGIL_AT_FDCWD) {
					base = BPF_CORE_READ(task, fs, pwd);
					have = 1;
				} else {
					struct file *df = vigil_fd_file(task, dirfd);
					if (df) {
						base = BPF_CORE_READ(df, f_path);
						have = 1;
					}
				}
			} else {
				/* An absolute name is below the task's root: inside a chroot that is not
				 * the namespace's root, the record carries where that root is. */
				if (not_entered)
					base = BPF_CORE_READ(task, fs, root);
				else
					base = in->enter_root;
				int plain = (inf & VIGIL_IN_ROOT_PLAIN) && in->root_mnt == (void *)base.mnt &&
					    in->root_dentry == (void *)base.dentry;
				have = !plain;
				chroot_check = 1;
			}
			if (have) {
				__u32 at = pos;
				__u16 bl = put_path(e, &pos, work, &base, task);
				if (!chroot_check) {
					e->base_len = bl;
				} else if (bl <= 1) {
					pos = at; /* "/": no chroot */
					if (!not_entered) {
						in->root_mnt = base.mnt;
						in->root_dentry = base.dentry;
						in->flags |= VIGIL_IN_ROOT_PLAIN;
					}
				} else {
					e->base_len = bl;
					e->sflags |= VIGIL_SC_ROOT_BASE;
					in->flags &= ~VIGIL_IN_ROOT_PLAIN;
				}
			}
		}
		/* the fd: its path from the kernel, or its socket */
		__u8 fa = rule->fd_arg;
		__s64 fd = fa == VIGIL_ARG_RET ? ret : (fa < 6 ? (__s64)(int)in->args[fa] : -1);
		struct file *f = fd >= 0 ? vigil_fd_file(task, fd) : NULL;
		struct sock *sk = vigil_file_sock(f);
		struct path fp;
		__u16 fp_flag = 0;
		if (sk) {
			vigil_describe_sock(sk, &e->sock);
			e->sflags |= VIGIL_SC_SOCK;
			if ((fl & VIGIL_RULE_TRACK_SOCK) && e->sock.protocol == IPPROTO_TCP)
				track_sk = sk;
			/* A unix socket's peer, by the file it is bound to as the kernel holds it (a
			 * connect to the runtime's socket bind-mounted under another name, or reached
			 * through a symlink, names the host's socket file). */
			if (e->sock.family == VIGIL_AF_UNIX) {
				struct sock *peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
				if (peer) {
					fp = BPF_CORE_READ((struct unix_sock *)peer, path);
					if (fp.dentry)
						fp_flag = VIGIL_SC_PEER_PATH;
				}
			}
		} else if (f) {
			fp = BPF_CORE_READ(f, f_path);
			fp_flag = VIGIL_SC_FD_PATH;
		}
		if (fp_flag) {
			e->fd_path_len = put_path(e, &pos, work, &fp, task);
			e->sflags |= fp_flag;
		}
		/* raw argument bytes: as read before the call (compared with now), or, for a
		 * sockaddr the call writes (accept) and a call sys_enter never saw, now */
		__u8 ra = rule->blob_arg;
		if (ra < 6) {
			__u32 at = pos;
			blob_at = at;
			if (at <= VIGIL_DATA_MAX - VIGIL_BLOB_MAX) {
				int late = !not_entered && !(fl & VIGIL_RULE_BLOB_LEN_PTR) && (inf & VIGIL_IN_FAULT_BLOB);
				if (not_entered || (fl & VIGIL_RULE_BLOB_LEN_PTR) || late) {
					__u32 blen = blob_len_of(rule, in->args);
					barrier_var(blen); /* keep the mask below: the verifier checks that register */
					blen &= VIGIL_BLOB_MAX * 2 - 1;
					if (blen > 0 && blen <= VIGIL_BLOB_MAX &&
					    bpf_probe_read_user(&e->data[at & VIGIL_DATA_MASK], blen, (void *)in->args[ra]) == 0) {
						e->blob_len = blen;
						pos = at + blen;
						if (late)
							e->sflags |= VIGIL_SC_READ_AT_EXIT;
					}
				} else {
					__u32 blen = in->blob_len & (VIGIL_BLOB_MAX * 2 - 1);
					if (blen > 0 && blen <= VIGIL_BLOB_MAX) {
						bpf_probe_read_kernel(&e->data[at & VIGIL_DATA_MASK], blen, in->blob);
						e->blob_len = blen;
						pos = at + blen;
						__builtin_memset(work->buf, 0, VIGIL_STR_MAX);
						if (bpf_probe_read_user(work->buf, blen, (void *)in->args[ra]) != 0 ||
						    str_differs(in->blob, (const __u8 *)work->buf))
							e->sflags |= VIGIL_SC_ARGS_CHANGED;
					}
				}
			}
		}
		/* the kernel's own name of the object a path-only call changed */
		__u32 kl = in->kname_len & (VIGIL_NAME_MAX - 1);
		if (!not_entered && (inf & VIGIL_IN_KNAME) && kl > 0 && pos <= VIGIL_DATA_MAX - VIGIL_NAME_MAX) {
			__u32 at = pos;
			bpf_probe_read_kernel(&e->data[at & VIGIL_DATA_MASK], kl, &in->kname[in->kname_off & (VIGIL_NAME_MAX - 1)]);
			e->kname_len = kl;
			pos = at + kl;
			if ((in->kname_flags & 3) == 3)
				e->sflags |= VIGIL_SC_KNAME_ROOTFS;
		}
		/* the directory the other string (rename's, link's new name) is relative to */
		__u32 l2 = vigil_put_base2(e, pos, rule, in);
		e->base2_len = l2;
		pos += l2;

		/* filters (never for a process's first compat call: that is the event, nor for a call
		 * enforce.bpf.c killed the task at: the record is why it died) */
		struct vigil_task_state *kst = vigil_task_state(task);
		if (kst && kst->kill_rule)
			inf |= VIGIL_IN_FORCE;
		if (!raw && !(inf & VIGIL_IN_FORCE) && (fl & VIGIL_RULE_PATH_FILTER) && cfg->path_filter) {
			if (!vigil_subject_watched(e, work, bs))
				return 0;
		}
		if (!raw && !(inf & VIGIL_IN_FORCE) && (fl & VIGIL_RULE_PORT_FILTER) && cfg->port_filter) {
			__u16 sa_port = 0;
			if (e->blob_len >= 4) {
				__u8 hi = e->data[(blob_at + 2) & VIGIL_DATA_MASK];
				__u8 lo = e->data[(blob_at + 3) & VIGIL_DATA_MASK];
				sa_port = (hi << 8) | lo;
			}
			if (!port_watched(e->sock.local_port) && !port_watched(e->sock.remote_port) && !port_watched(sa_port))
				return 0;
		}
	}

	/* The header last: a record the filters drop never pays for it. */
	vigil_fill_header(&e->hdr, VIGIL_KIND_SYSCALL, task, key);
	/* An accepted socket changed state before accept returned (in softirq, owned by its
	 * listener): its next change takes this task as owner, from the task's storage when it
	 * runs in this task (a close), else from vigil_tracked_socks. A connect or listen was
	 * taken in the call by its first state change: its pending entry is spent. */
	if (track_sk) {
		__u64 skey = (__u64)track_sk;
		if (rule && rule->fd_arg == VIGIL_ARG_RET) {
			bpf_map_update_elem(&vigil_tracked_socks, &skey, &e->hdr, BPF_ANY);
			struct vigil_sock_pending *pend = bpf_task_storage_get(&vigil_sock_pending, task, 0,
									       BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (pend) {
				__builtin_memcpy(&pend->owner, &e->hdr, sizeof(pend->owner));
				pend->sk = skey;
			}
		} else {
			struct vigil_sock_pending *pend = bpf_task_storage_get(&vigil_sock_pending, task, 0, 0);
			if (pend && pend->sk == skey)
				pend->sk = 0;
		}
	}
	__u32 size = offsetof(struct vigil_syscall, data) + pos;
	e->hdr.size = size;
	vigil_submit(e, size, VIGIL_KIND_SYSCALL);
	return 0;
}
